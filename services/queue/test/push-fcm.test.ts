import { createVerify, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { queue } from "@phoenix/proto";
import { makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FCM_SCOPE, FcmError, FcmNotifier, parseServiceAccount } from "../src/push/fcm.js";
import {
  decodeJwt,
  type FakeAnswer,
  FakePushServer,
  loopbackCertificate,
  type RecordedRequest,
} from "./support/fake-push.js";

const PROJECT = "phoenix-test-project";
const EMAIL = "push@phoenix-test-project.iam.gserviceaccount.com";
const DEVICE = "fcm-registration-token:APA91b_test-1";
const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE = 60_000;

let tls: TestTlsFiles;
let google: FakePushServer;
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const notifiers: FcmNotifier[] = [];
let clock = T0;
let sleeps: number[] = [];
let issued = 0;
/** What the send endpoint answers (the token endpoint always issues a new access token). */
let send: (request: RecordedRequest) => FakeAnswer;

beforeAll(async () => {
  tls = makeTestTls([]);
  google = await FakePushServer.start(loopbackCertificate(tls));
  google.answer = (request) => {
    if (request.path === "/token") {
      issued++;
      return {
        status: 200,
        body: JSON.stringify({ access_token: `ya29.test-${issued}`, expires_in: 3600, token_type: "Bearer" }),
      };
    }
    return send(request);
  };
});
afterAll(async () => {
  for (const n of notifiers) await n.close();
  await google?.close();
  tls?.remove();
});
beforeEach(() => {
  google.requests.length = 0;
  send = () => ({ status: 200, body: JSON.stringify({ name: `projects/${PROJECT}/messages/1` }) });
  clock = T0;
  sleeps = [];
});

function serviceAccountJson(): string {
  return JSON.stringify({
    type: "service_account",
    project_id: PROJECT,
    private_key_id: "0123456789abcdef",
    private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: EMAIL,
    client_id: "1",
    token_uri: `${google.origin}/token`,
  });
}

function notifier(): FcmNotifier {
  const n = new FcmNotifier({
    account: parseServiceAccount(serviceAccountJson()),
    origin: google.origin,
    ca: readFileSync(tls.caFile),
    ttlMs: 3600_000,
    now: () => clock,
    retry: { baseDelayMs: 1000, sleep: async (ms) => sleeps.push(ms) },
  });
  notifiers.push(n);
  return n;
}

const fcmToken = (token = DEVICE): queue.PushToken => ({
  provider: queue.PushProvider.PUSH_PROVIDER_FCM,
  token,
});
const sends = () => google.requests.filter((r) => r.path !== "/token");
const grants = () => google.requests.filter((r) => r.path === "/token");

function fcmError(status: number, code: string, extra: object = {}): FakeAnswer {
  return {
    status,
    body: JSON.stringify({
      error: {
        code: status,
        message: "refused",
        status: code,
        details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: code }],
        ...extra,
      },
    }),
  };
}

describe("FCM HTTP v1 notifier", () => {
  it("gets an access token with an RS256 JWT grant, then sends a data-only message", async () => {
    expect(await notifier().notify(fcmToken(), { collapseId: "q-collapse-1" })).toBe("sent");

    const [grant] = grants() as [RecordedRequest];
    expect(grant.method).toBe("POST");
    expect(grant.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const form = new URLSearchParams(grant.body.toString("utf8"));
    expect([...form.keys()].sort()).toEqual(["assertion", "grant_type"]);
    expect(form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
    const jwt = decodeJwt(form.get("assertion") ?? "");
    expect(jwt.header).toEqual({ alg: "RS256", typ: "JWT", kid: "0123456789abcdef" });
    expect(jwt.claims).toEqual({
      iss: EMAIL,
      scope: FCM_SCOPE,
      aud: `${google.origin}/token`,
      iat: T0 / 1000,
      exp: T0 / 1000 + 3600,
    });
    const verify = createVerify("SHA256");
    verify.update(jwt.input);
    expect(verify.verify(publicKey, jwt.signature)).toBe(true);

    const [message] = sends() as [RecordedRequest];
    expect(message.method).toBe("POST");
    expect(message.path).toBe(`/v1/projects/${PROJECT}/messages:send`);
    expect(message.headers.authorization).toBe(`Bearer ya29.test-${issued}`);
    expect(message.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(message.body.toString("utf8"))).toEqual({
      message: {
        token: DEVICE,
        data: { type: "queue_activity" },
        android: { collapse_key: "q-collapse-1", priority: "HIGH", ttl: "3600s" },
      },
    });
  });

  it("caches the access token until shortly before it expires", async () => {
    const n = notifier();
    await n.notify(fcmToken(), { collapseId: "c" });
    await Promise.all([1, 2, 3].map(() => n.notify(fcmToken(), { collapseId: "c" })));
    clock = T0 + 54 * MINUTE;
    await n.notify(fcmToken(), { collapseId: "c" });
    expect(grants()).toHaveLength(1);
    clock = T0 + 56 * MINUTE;
    await n.notify(fcmToken(), { collapseId: "c" });
    expect(grants()).toHaveLength(2);
    const tokens = new Set(sends().map((r) => r.headers.authorization));
    expect(tokens.size).toBe(2);
  });

  it("answers unregistered for UNREGISTERED, an INVALID_ARGUMENT about the token and SENDER_ID_MISMATCH", async () => {
    const n = notifier();
    send = () => fcmError(404, "UNREGISTERED");
    expect(await n.notify(fcmToken(), { collapseId: "c" })).toBe("unregistered");
    send = () => ({
      status: 400,
      body: JSON.stringify({
        error: {
          code: 400,
          message: "The registration token is not a valid FCM registration token",
          status: "INVALID_ARGUMENT",
          details: [
            { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "INVALID_ARGUMENT" },
            {
              "@type": "type.googleapis.com/google.rpc.BadRequest",
              fieldViolations: [{ field: "message.token", description: "Invalid registration token" }],
            },
          ],
        },
      }),
    });
    expect(await n.notify(fcmToken(), { collapseId: "c" })).toBe("unregistered");
    send = () => fcmError(403, "SENDER_ID_MISMATCH");
    expect(await n.notify(fcmToken(), { collapseId: "c" })).toBe("unregistered");
    // An INVALID_ARGUMENT about something else is an error, not a dead token.
    send = () => fcmError(400, "INVALID_ARGUMENT", { message: "Invalid value at 'message.android.ttl'" });
    await expect(n.notify(fcmToken(), { collapseId: "c" })).rejects.toThrow(FcmError);
    expect(sends()).toHaveLength(4);
  });

  it("retries 429 and 503 after the Retry-After the server asks for", async () => {
    let n = 0;
    send = () =>
      ++n === 1
        ? { ...fcmError(429, "QUOTA_EXCEEDED"), headers: { "retry-after": "7" } }
        : { status: 200, body: "{}" };
    expect(await notifier().notify(fcmToken(), { collapseId: "c" })).toBe("sent");
    expect(sleeps).toEqual([7000]);

    n = 0;
    sleeps = [];
    send = () => (++n <= 2 ? fcmError(503, "UNAVAILABLE") : { status: 200, body: "{}" });
    expect(await notifier().notify(fcmToken(), { collapseId: "c" })).toBe("sent");
    expect(sleeps).toEqual([1000, 2000]);
    // A Retry-After beyond a minute: given up at once.
    send = () => ({ ...fcmError(503, "UNAVAILABLE"), headers: { "retry-after": "3600" } });
    await expect(notifier().notify(fcmToken(), { collapseId: "c" })).rejects.toThrow(/beyond/);
  });

  it("fetches a new access token after 401", async () => {
    const n = notifier();
    await n.notify(fcmToken(), { collapseId: "c" });
    const first = sends()[0]?.headers.authorization;
    send = (r) =>
      r.headers.authorization === first ? fcmError(401, "UNAUTHENTICATED") : { status: 200, body: "{}" };
    expect(await n.notify(fcmToken(), { collapseId: "c" })).toBe("sent");
    expect(grants()).toHaveLength(2);
    expect(sends().at(-1)?.headers.authorization).not.toBe(first);
  });

  it("names what a service-account file lacks", () => {
    const { private_key_id: _, ...rest } = JSON.parse(serviceAccountJson()) as Record<string, string>;
    expect(() => parseServiceAccount(JSON.stringify(rest))).toThrow(/private_key_id/);
    expect(() => parseServiceAccount("not json")).toThrow(FcmError);
  });
});
