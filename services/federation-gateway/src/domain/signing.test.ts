import { DEFAULT_ENVELOPE_WINDOW, SigningKey, type VerifyingKey } from "@phoenix/crypto";
import { type common, federation } from "@phoenix/proto";
import { authenticateSignedRequest } from "@phoenix/runtime/signed-request";
import { describe, expect, it } from "vitest";
import { FederationAuthError, MalformedFederationRequestError } from "./errors.js";
import { FEDERATION_REQUEST_CHECKS, senderDomain, signFederationRequest } from "./signing.js";

const LABEL = "phoenix.federation.v1.FederationService/Forward";
const body = {
  destinationDomain: "b.test",
  method: "/phoenix.auth.v1.AuthService/GetAsCredentials",
  request: new Uint8Array([1]),
};

/** Authenticates `signed` with the gateway's checks against `keys` at `now` (no replay store). */
function check(signed: common.Signed | undefined, keys: VerifyingKey[], now = Date.now(), label = LABEL) {
  const policy = {
    ...FEDERATION_REQUEST_CHECKS,
    window: DEFAULT_ENVELOPE_WINDOW,
    now: () => now,
    replay: { claim: async () => true },
  };
  return authenticateSignedRequest(
    policy,
    { signed, type: federation.ForwardTbs, method: label },
    (_tbs, header) => ({ signer: senderDomain(header), key: keys, replayScope: [] }),
  );
}

describe("federation request signing", () => {
  it("a request signed by the domain key verifies and is fresh inside the window only", async () => {
    const key = SigningKey.generate();
    const now = new Date();
    const signed = await signFederationRequest(federation.ForwardTbs, LABEL, "a.test", key, body, now);
    const request = await check(
      signed,
      [SigningKey.generate().verifyingKey, key.verifyingKey],
      now.getTime(),
    );
    expect(request.signer.signer).toBe("a.test");
    expect(request.tbs.destinationDomain).toBe("b.test");
    const later = now.getTime() + DEFAULT_ENVELOPE_WINDOW.maxAgeMs + 1;
    await expect(check(signed, [key.verifyingKey], later)).rejects.toThrow(FederationAuthError);
  });

  it("refuses other keys, tampered bytes and another RPC's label", async () => {
    const key = SigningKey.generate();
    const signed = await signFederationRequest(federation.ForwardTbs, LABEL, "a.test", key, body);
    await expect(check(signed, [SigningKey.generate().verifyingKey])).rejects.toThrow(
      "signature by a.test does not verify with its federation keys",
    );
    const tampered = { ...signed, tbs: signed.tbs.slice() };
    tampered.tbs.set([(tampered.tbs.at(-1) ?? 0) ^ 1], tampered.tbs.length - 1);
    await expect(check(tampered, [key.verifyingKey])).rejects.toThrow(FederationAuthError);
    const otherLabel = "phoenix.federation.v1.FederationService/DeliverFanOut";
    await expect(check(signed, [key.verifyingKey], Date.now(), otherLabel)).rejects.toThrow(
      `signature label must be "${otherLabel}"`,
    );
  });

  it("refuses stale and future timestamps, after the signature", async () => {
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
    await expect(check(old, [key.verifyingKey], now)).rejects.toThrow(/ago/);
    await expect(check(old, [SigningKey.generate().verifyingKey], now)).rejects.toThrow(/does not verify/);
    const ahead = await signFederationRequest(
      federation.ForwardTbs,
      LABEL,
      "a.test",
      key,
      body,
      new Date(now + 120_000),
    );
    await expect(check(ahead, [key.verifyingKey], now)).rejects.toThrow(/future/);
  });

  it("refuses requests without a domain sender", async () => {
    const key = SigningKey.generate();
    const signed = await signFederationRequest(federation.ForwardTbs, LABEL, "a.test", key, body);
    const decoded = federation.ForwardTbs.decode(signed.tbs);
    const noSender = federation.ForwardTbs.encode({
      ...decoded,
      header: decoded.header ? { ...decoded.header, sender: undefined } : undefined,
    }).finish();
    await expect(check({ tbs: noSender, signature: signed.signature }, [key.verifyingKey])).rejects.toThrow(
      MalformedFederationRequestError,
    );
    await expect(check(undefined, [key.verifyingKey])).rejects.toThrow(MalformedFederationRequestError);
  });
});
