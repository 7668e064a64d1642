// End to end: fan-outs through the QS to fake APNs and FCM servers on loopback, configured the way
// an operator does (QS_PUSH_* variables, key files, a CA file).
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, toHex } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { loadConfig } from "@phoenix/runtime/config";
import { createLogger } from "@phoenix/runtime/log";
import { eventually, makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type QueueConfig, queueConfigSchema } from "../src/config.js";
import { PushConfigError, pushNotifier } from "../src/setup.js";
import { FakePushServer, loopbackCertificate, type RecordedRequest } from "./support/fake-push.js";
import { localGroup, publishFanOut } from "./support/fan-out.js";
import { Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

let tls: TestTlsFiles;
let apns: FakePushServer;
let google: FakePushServer;
/** APNs device tokens whose pushes APNs answers 410 Unregistered. */
const unregistered = new Set<string>();

beforeAll(async () => {
  tls = makeTestTls([]);
  const credentials = loopbackCertificate(tls);
  apns = await FakePushServer.start(credentials);
  google = await FakePushServer.start(credentials);
  apns.answer = (r) =>
    unregistered.has(r.path.slice("/3/device/".length))
      ? { status: 410, body: JSON.stringify({ reason: "Unregistered", timestamp: Date.now() }) }
      : { status: 200 };
  google.answer = (r) =>
    r.path === "/token"
      ? {
          status: 200,
          body: JSON.stringify({ access_token: "ya29.e2e", expires_in: 3600, token_type: "Bearer" }),
        }
      : { status: 200, body: "{}" };
  const apnsKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  writeFileSync(join(tls.dir, "apns.p8"), apnsKey.export({ type: "pkcs8", format: "pem" }));
  const fcmKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  writeFileSync(
    join(tls.dir, "fcm.json"),
    JSON.stringify({
      type: "service_account",
      project_id: "phoenix-e2e",
      private_key_id: "k1",
      private_key: fcmKey.export({ type: "pkcs8", format: "pem" }),
      client_email: "push@phoenix-e2e.iam.gserviceaccount.com",
      token_uri: `${google.origin}/token`,
    }),
  );
});
afterAll(async () => {
  await apns?.close();
  await google?.close();
  tls?.remove();
});

function pushConfig(minIntervalMs: number): Partial<QueueConfig> {
  return {
    QS_PUSH_MIN_INTERVAL: minIntervalMs,
    QS_PUSH_CA_FILE: tls.caFile,
    QS_PUSH_APNS_KEY_FILE: join(tls.dir, "apns.p8"),
    QS_PUSH_APNS_KEY_ID: "KEY1234567",
    QS_PUSH_APNS_TEAM_ID: "TEAM123456",
    QS_PUSH_APNS_TOPIC: "org.phoenix.app",
    QS_PUSH_APNS_BASE_URL: apns.origin,
    QS_PUSH_FCM_SERVICE_ACCOUNT_FILE: join(tls.dir, "fcm.json"),
    QS_PUSH_FCM_BASE_URL: google.origin,
  };
}

const apnsDevice = () => toHex(randomBytes(32));
const apnsToken = (token: string): queue.PushToken => ({
  provider: queue.PushProvider.PUSH_PROVIDER_APNS,
  token,
});

/** Whether `request` carries `secret` anywhere (raw, hex, base64 or base64url), headers included. */
function carries(request: RecordedRequest, secret: Uint8Array): boolean {
  const raw = Buffer.from(secret);
  const everything = Buffer.concat([
    Buffer.from(JSON.stringify(request.headers)),
    Buffer.from(request.path),
    request.body,
  ]);
  if (everything.includes(raw)) return true;
  const text = everything.toString("latin1").toLowerCase();
  return [raw.toString("hex"), raw.toString("base64"), raw.toString("base64url")].some((form) =>
    text.includes(form.toLowerCase()),
  );
}

async function hasPushToken(client: TestClient): Promise<boolean> {
  const res = await client.qs.getUser({ signed: await client.userSigned(queue.GetUserTbs, "getUser", {}) });
  return res.clients.some((c) => c.hasPushToken);
}

describe("push through APNs and FCM", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start({ config: pushConfig(0) });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("pushes to each token's provider, and a push says only that something is waiting", async () => {
    const aliceDevice = apnsDevice();
    const alice = await h.newUser({ pushToken: apnsToken(aliceDevice) });
    const bob = await h.newUser({
      pushToken: { provider: queue.PushProvider.PUSH_PROVIDER_FCM, token: "bob-fcm-token:APA91b" },
    });
    const group = localGroup();
    const fanOut = await publishFanOut(h, {
      groupId: group,
      payload: randomBytes(256),
      recipients: [alice.qsReference(), bob.qsReference()],
    });
    const toAlice = await eventually(() => apns.on(`/3/device/${aliceDevice}`)[0]);
    const toBob = await eventually(() =>
      google.requests.find(
        (r) => r.path === "/v1/projects/phoenix-e2e/messages:send" && r.body.includes("bob-fcm-token"),
      ),
    );
    expect(JSON.parse(toBob.body.toString("utf8")).message.data).toEqual({ type: "queue_activity" });

    for (const request of [toAlice, toBob]) {
      for (const [what, secret] of [
        ["payload", fanOut.payload],
        ["group id", group.uuid],
        ["fan-out id", fanOut.fanOutId],
        ["alice's queue id", alice.clientId],
        ["bob's queue id", bob.clientId],
      ] as const) {
        expect(carries(request, secret), `${request.path}: ${what}`).toBe(false);
      }
      expect(request.body.toString("utf8")).not.toContain(group.domain);
    }
    // One collapse id per queue, the same for every push of that queue.
    const collapse = toAlice.headers["apns-collapse-id"];
    expect(collapse).toMatch(/^[\w-]{22}$/);
    expect(JSON.parse(toBob.body.toString("utf8")).message.android.collapse_key).not.toBe(collapse);
    await publishFanOut(h, { recipients: [alice.qsReference()] });
    const second = await eventually(() => apns.on(`/3/device/${aliceDevice}`)[1]);
    expect(second.headers["apns-collapse-id"]).toBe(collapse);
  });

  it("deletes a token APNs calls unregistered, so the next delivery sends no push", async () => {
    const carolDevice = apnsDevice();
    const erinDevice = apnsDevice();
    unregistered.add(carolDevice);
    const carol = await h.newUser({ pushToken: apnsToken(carolDevice) });
    const erin = await h.newUser({ pushToken: apnsToken(erinDevice) });
    await publishFanOut(h, { recipients: [carol.qsReference()] });
    await eventually(() => apns.on(`/3/device/${carolDevice}`)[0]);
    await eventually(async () => ((await hasPushToken(carol)) ? undefined : true));

    // Both in one batch: once erin's push arrived, a push for carol would have been sent too.
    await publishFanOut(h, { recipients: [carol.qsReference(), erin.qsReference()] });
    await eventually(() => apns.on(`/3/device/${erinDevice}`)[0]);
    expect((await carol.dequeue(0n)).messages.length).toBeGreaterThanOrEqual(2);
    expect(apns.on(`/3/device/${carolDevice}`)).toHaveLength(1);
    expect(await hasPushToken(erin)).toBe(true);
  });
});

describe("push coalescing", () => {
  let h: Harness;
  beforeAll(async () => {
    // One fan-out per consumer batch: without coalescing every message would be a push.
    h = await Harness.start({ config: { ...pushConfig(60_000), QS_FANOUT_MAX_IN_FLIGHT: 1 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("turns a burst of 100 messages for one queue into one or two pushes", async () => {
    const daveDevice = apnsDevice();
    const dave = await h.newUser({ pushToken: apnsToken(daveDevice) });
    const ref = dave.qsReference();
    await Promise.all(Array.from({ length: 100 }, () => publishFanOut(h, { recipients: [ref] })));
    await eventually(async () => ((await dave.dequeue(0n)).messages.length >= 100 ? true : undefined));
    await eventually(() => apns.on(`/3/device/${daveDevice}`)[0]);
    const pushes = apns.on(`/3/device/${daveDevice}`).length;
    expect(pushes).toBeGreaterThanOrEqual(1);
    expect(pushes).toBeLessThanOrEqual(2);
  });
});

describe("push provider configuration", () => {
  it("refuses an APNs key file without key id, team and topic, and a service-account file that is not one", async () => {
    const base = loadConfig(queueConfigSchema, { QS_DOMAIN: "alpha.example" });
    const logger = createLogger({ service: "queue", level: "silent" });
    await expect(
      pushNotifier({ ...base, QS_PUSH_APNS_KEY_FILE: join(tls.dir, "apns.p8") }, logger),
    ).rejects.toThrow(PushConfigError);
    await expect(
      pushNotifier({ ...base, QS_PUSH_FCM_SERVICE_ACCOUNT_FILE: join(tls.dir, "apns.p8") }, logger),
    ).rejects.toThrow(/not JSON/);
  });
});
