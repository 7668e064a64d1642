import { DEFAULT_ENVELOPE_WINDOW, SigningKey } from "@phoenix/crypto";
import { federation } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { FederationAuthError, MalformedFederationRequestError } from "./errors.js";
import { checkFreshness, peekRequest, signFederationRequest, verifySignature } from "./signing.js";

const LABEL = "phoenix.federation.v1.FederationService/Forward";
const body = {
  destinationDomain: "b.test",
  method: "/phoenix.auth.v1.AuthService/GetAsCredentials",
  request: new Uint8Array([1]),
};

describe("federation request signing", () => {
  it("a request signed by the domain key verifies and is fresh inside the window only", async () => {
    const key = SigningKey.generate();
    const now = new Date();
    const signed = await signFederationRequest(federation.ForwardTbs, LABEL, "a.test", key, body, now);
    const request = peekRequest(federation.ForwardTbs, signed, LABEL);
    expect(request.sender).toBe("a.test");
    expect(request.tbs.destinationDomain).toBe("b.test");
    expect(verifySignature([SigningKey.generate().verifyingKey, key.verifyingKey], LABEL, signed)).toBe(true);
    checkFreshness(request, now.getTime());
    const later = now.getTime() + DEFAULT_ENVELOPE_WINDOW.maxAgeMs + 1;
    expect(() => checkFreshness(request, later)).toThrow(FederationAuthError);
  });

  it("refuses other keys, tampered bytes and another RPC's label", async () => {
    const key = SigningKey.generate();
    const signed = await signFederationRequest(federation.ForwardTbs, LABEL, "a.test", key, body);
    expect(verifySignature([SigningKey.generate().verifyingKey], LABEL, signed)).toBe(false);
    const tampered = { ...signed, tbs: signed.tbs.slice() };
    tampered.tbs.set([(tampered.tbs.at(-1) ?? 0) ^ 1], tampered.tbs.length - 1);
    expect(verifySignature([key.verifyingKey], LABEL, tampered)).toBe(false);
    const otherLabel = "phoenix.federation.v1.FederationService/DeliverFanOut";
    expect(verifySignature([key.verifyingKey], otherLabel, signed)).toBe(false);
    expect(() => peekRequest(federation.ForwardTbs, signed, otherLabel)).toThrow(FederationAuthError);
  });

  it("refuses stale and future timestamps", async () => {
    const key = SigningKey.generate();
    const now = Date.now();
    const old = await signFederationRequest(
      federation.ForwardTbs,
      LABEL,
      "a.test",
      key,
      body,
      new Date(now - 301_000),
    );
    expect(() => checkFreshness(peekRequest(federation.ForwardTbs, old, LABEL), now)).toThrow(/ago/);
    const ahead = await signFederationRequest(
      federation.ForwardTbs,
      LABEL,
      "a.test",
      key,
      body,
      new Date(now + 120_000),
    );
    expect(() => checkFreshness(peekRequest(federation.ForwardTbs, ahead, LABEL), now)).toThrow(/future/);
  });

  it("refuses requests without a domain sender", async () => {
    const key = SigningKey.generate();
    const signed = await signFederationRequest(federation.ForwardTbs, LABEL, "a.test", key, body);
    const decoded = federation.ForwardTbs.decode(signed.tbs);
    const noSender = federation.ForwardTbs.encode({
      ...decoded,
      header: decoded.header ? { ...decoded.header, sender: undefined } : undefined,
    }).finish();
    expect(() =>
      peekRequest(federation.ForwardTbs, { tbs: noSender, signature: signed.signature }, LABEL),
    ).toThrow(MalformedFederationRequestError);
    expect(() => peekRequest(federation.ForwardTbs, undefined, LABEL)).toThrow(
      MalformedFederationRequestError,
    );
  });
});
