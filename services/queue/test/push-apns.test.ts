import { createVerify, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { queue } from "@phoenix/proto";
import { makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { APNS_ALERT_LOC_KEY, ApnsError, ApnsNotifier, type ApnsNotifierOptions } from "../src/push/apns.js";
import { PushRetryError } from "../src/push/retry.js";
import { decodeJwt, FakePushServer, loopbackCertificate, type RecordedRequest } from "./support/fake-push.js";

const KEY_ID = "ABC123DEFG";
const TEAM_ID = "TEAM123456";
const TOPIC = "org.phoenix.app";
const DEVICE = "a1".repeat(32);
const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE = 60_000;

let tls: TestTlsFiles;
let apns: FakePushServer;
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const notifiers: ApnsNotifier[] = [];
let clock = T0;
let sleeps: number[] = [];

beforeAll(async () => {
  tls = makeTestTls([]);
  apns = await FakePushServer.start(loopbackCertificate(tls));
});
afterAll(async () => {
  for (const n of notifiers) await n.close();
  await apns?.close();
  tls?.remove();
});
beforeEach(() => {
  apns.requests.length = 0;
  apns.answer = () => ({ status: 200, headers: { "apns-id": "00000000-0000-0000-0000-000000000001" } });
  clock = T0;
  sleeps = [];
});

function notifier(options: Partial<ApnsNotifierOptions> = {}): ApnsNotifier {
  const n = new ApnsNotifier({
    key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    keyId: KEY_ID,
    teamId: TEAM_ID,
    topic: TOPIC,
    origin: apns.origin,
    ca: readFileSync(tls.caFile),
    ttlMs: 3600_000,
    now: () => clock,
    retry: { baseDelayMs: 1000, sleep: async (ms) => sleeps.push(ms) },
    ...options,
  });
  notifiers.push(n);
  return n;
}

const apnsToken = (token = DEVICE): queue.PushToken => ({
  provider: queue.PushProvider.PUSH_PROVIDER_APNS,
  token,
});

/** The provider token of a request, checked against the key's public half. */
function verifiedJwt(request: RecordedRequest) {
  const authorization = String(request.headers.authorization);
  expect(authorization).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  const jwt = decodeJwt(authorization.slice("bearer ".length));
  // ES256 in JOSE form: r||s, 64 bytes, not DER.
  expect(jwt.signature.length).toBe(64);
  const verify = createVerify("SHA256");
  verify.update(jwt.input);
  expect(verify.verify({ key: publicKey, dsaEncoding: "ieee-p1363" }, jwt.signature)).toBe(true);
  return jwt;
}

describe("APNs notifier", () => {
  it("POSTs an alert push over HTTP/2 with an ES256 provider token, exactly as APNs documents it", async () => {
    expect(await notifier().notify(apnsToken(), { collapseId: "q-collapse-1" })).toBe("sent");
    expect(apns.requests).toHaveLength(1);
    const [request] = apns.requests as [RecordedRequest];
    expect(request.method).toBe("POST");
    expect(request.path).toBe(`/3/device/${DEVICE}`);
    expect(request.headers[":scheme"]).toBe("https");
    expect(request.headers["apns-topic"]).toBe(TOPIC);
    expect(request.headers["apns-push-type"]).toBe("alert");
    expect(request.headers["apns-priority"]).toBe("10");
    expect(request.headers["apns-expiration"]).toBe(String((T0 + 3600_000) / 1000));
    expect(request.headers["apns-collapse-id"]).toBe("q-collapse-1");
    expect(request.headers["content-type"]).toBe("application/json");
    const jwt = verifiedJwt(request);
    expect(jwt.header).toEqual({ alg: "ES256", kid: KEY_ID });
    expect(jwt.claims).toEqual({ iss: TEAM_ID, iat: T0 / 1000 });
    expect(JSON.parse(request.body.toString("utf8"))).toEqual({
      aps: { alert: { "loc-key": APNS_ALERT_LOC_KEY }, "mutable-content": 1 },
    });
  });

  it("sends a background push as content-available with priority 5", async () => {
    await notifier({ pushType: "background", ttlMs: 0 }).notify(apnsToken(), { collapseId: "c" });
    const [request] = apns.requests as [RecordedRequest];
    expect(request.headers["apns-push-type"]).toBe("background");
    expect(request.headers["apns-priority"]).toBe("5");
    expect(request.headers["apns-expiration"]).toBe("0");
    expect(JSON.parse(request.body.toString("utf8"))).toEqual({ aps: { "content-available": 1 } });
  });

  it("reuses the provider token for 50 minutes, then signs a new one", async () => {
    const n = notifier();
    await n.notify(apnsToken(), { collapseId: "c" });
    clock = T0 + 49 * MINUTE;
    await n.notify(apnsToken(), { collapseId: "c" });
    clock = T0 + 50 * MINUTE;
    await n.notify(apnsToken(), { collapseId: "c" });
    const jwts = apns.requests.map((r) => String(r.headers.authorization));
    expect(jwts[1]).toBe(jwts[0]);
    expect(jwts[2]).not.toBe(jwts[0]);
    expect(verifiedJwt(apns.requests[2] as RecordedRequest).claims).toEqual({
      iss: TEAM_ID,
      iat: (T0 + 50 * MINUTE) / 1000,
    });
  });

  it("answers unregistered for 410 Unregistered, 400 BadDeviceToken and DeviceTokenNotForTopic", async () => {
    const n = notifier();
    for (const [status, reason] of [
      [410, "Unregistered"],
      [400, "BadDeviceToken"],
      [400, "DeviceTokenNotForTopic"],
    ] as const) {
      apns.answer = () => ({
        status,
        body: JSON.stringify({ reason, ...(status === 410 ? { timestamp: T0 } : {}) }),
      });
      expect(await n.notify(apnsToken(), { collapseId: "c" }), reason).toBe("unregistered");
    }
    // A token that is no hex device token never reaches APNs (it would become part of the path).
    expect(await n.notify(apnsToken("../../3/device/x"), { collapseId: "c" })).toBe("unregistered");
    expect(apns.requests).toHaveLength(3);
  });

  it("fails without retrying on other 4xx refusals", async () => {
    apns.answer = () => ({ status: 400, body: JSON.stringify({ reason: "BadTopic" }) });
    await expect(notifier().notify(apnsToken(), { collapseId: "c" })).rejects.toThrow(ApnsError);
    expect(apns.requests).toHaveLength(1);
  });

  it("retries 429 and 5xx with bounded exponential backoff", async () => {
    let n = 0;
    apns.answer = () =>
      ++n === 1 ? { status: 429, body: JSON.stringify({ reason: "TooManyRequests" }) } : { status: 200 };
    expect(await notifier().notify(apnsToken(), { collapseId: "c" })).toBe("sent");
    expect(apns.requests).toHaveLength(2);
    expect(sleeps).toEqual([1000]);

    apns.requests.length = 0;
    sleeps = [];
    apns.answer = () => ({ status: 503, body: JSON.stringify({ reason: "ServiceUnavailable" }) });
    await expect(notifier().notify(apnsToken(), { collapseId: "c" })).rejects.toThrow(PushRetryError);
    expect(apns.requests).toHaveLength(3);
    expect(sleeps).toEqual([1000, 2000]);
  });

  it("signs a new provider token after 403 ExpiredProviderToken, but not sooner than Apple allows", async () => {
    const n = notifier();
    await n.notify(apnsToken(), { collapseId: "c" });
    const first = String(apns.requests[0]?.headers.authorization);
    apns.answer = (r) =>
      String(r.headers.authorization) === first
        ? { status: 403, body: JSON.stringify({ reason: "ExpiredProviderToken" }) }
        : { status: 200 };
    // 5 minutes old: Apple would refuse a new token (TooManyProviderTokenUpdates); no retry.
    clock = T0 + 5 * MINUTE;
    await expect(n.notify(apnsToken(), { collapseId: "c" })).rejects.toThrow(/ExpiredProviderToken/);
    expect(apns.requests).toHaveLength(2);
    // 25 minutes old: a new token, and the push goes through with it.
    clock = T0 + 25 * MINUTE;
    expect(await n.notify(apnsToken(), { collapseId: "c" })).toBe("sent");
    expect(apns.requests).toHaveLength(4);
    const renewed = apns.requests[3] as RecordedRequest;
    expect(String(renewed.headers.authorization)).not.toBe(first);
    expect(verifiedJwt(renewed).claims).toEqual({ iss: TEAM_ID, iat: (T0 + 25 * MINUTE) / 1000 });
  });

  it("gives up on an APNs it cannot reach after the bounded retries", async () => {
    const down = await FakePushServer.start(loopbackCertificate(tls));
    const origin = down.origin;
    await down.close();
    const n = notifier({ origin });
    await expect(n.notify(apnsToken(), { collapseId: "c" })).rejects.toThrow(PushRetryError);
    expect(sleeps).toEqual([1000, 2000]);
  });

  it("reconnects after APNs closed the connection", async () => {
    const n = notifier();
    expect(await n.notify(apnsToken(), { collapseId: "c" })).toBe("sent");
    apns.dropConnections();
    expect(await n.notify(apnsToken(), { collapseId: "c" })).toBe("sent");
    expect(apns.requests).toHaveLength(2);
  });

  it("refuses a signing key that is not P-256", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    expect(() => notifier({ key: rsa })).toThrow(ApnsError);
  });
});
