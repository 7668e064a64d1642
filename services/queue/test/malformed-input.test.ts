import { Metadata, status } from "@grpc/grpc-js";
import { randomBytes } from "@phoenix/crypto";
import { type common, queue } from "@phoenix/proto";
import { createChannel } from "@phoenix/runtime/grpc";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

let h: Harness;
let alice: TestClient;
beforeAll(async () => {
  h = await Harness.start();
  alice = await h.newUser();
});
afterAll(async () => {
  await h?.stop();
});

type Method = (typeof queue.QueueServiceService)[keyof typeof queue.QueueServiceService];
const unaryMethods = Object.entries(queue.QueueServiceService).filter(
  ([, m]) => !m.requestStream && !m.responseStream,
) as [keyof typeof queue.QueueServiceService, Method][];
const PUBLIC = new Set(["getQueueConfigEncryptionKey", "getVerifyingKey"]);

/** Sends raw request bytes to a method and returns the status code. */
function rawCall(path: string, bytes: Uint8Array): Promise<number> {
  const channel = createChannel(`127.0.0.1:${h.server.port}`, { maxMessageBytes: 64 * 1024 * 1024 });
  return new Promise<number>((resolve) => {
    channel.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (error) => {
        channel.close();
        resolve(error ? error.code : status.OK);
      },
    );
  });
}

async function query(text: string): Promise<unknown[]> {
  const result = (await h.db.db.execute(sql.raw(text))) as unknown as { rows: unknown[] };
  return result.rows;
}

/** Row counts of every QS table and the outbox: the state a refused request must not change. */
async function state(): Promise<string> {
  const tables = [
    "qs_users",
    "qs_clients",
    "qs_messages",
    "qs_add_packages",
    "qs_blocklist",
    "qs_handled_fan_outs",
  ];
  const counts: string[] = [];
  for (const t of tables) {
    const rows = await query(`select count(*)::int as n from ${t}`);
    counts.push(`${t}=${JSON.stringify(rows[0])}`);
  }
  counts.push(JSON.stringify(await query("select key_id, not_after from qs_keys order by key_id")));
  const clients = await query(
    "select client_id, auth_key, queue_key, encrypted_push_token, next_seq from qs_clients order by client_id",
  );
  counts.push(JSON.stringify(clients));
  return counts.join("\n");
}

function encodeRequest(method: Method, request: unknown): Uint8Array {
  return new Uint8Array(method.requestSerialize(request as never));
}

describe("malformed and oversized input on every RPC", () => {
  it("answers undecodable, unsigned, garbage-signed and oversized requests with a clean status and changes nothing", async () => {
    const before = await state();
    const results: string[] = [];
    for (const [name, method] of unaryMethods) {
      const expectations: [string, Uint8Array, number][] = [
        ["undecodable bytes", Uint8Array.of(0xff, 0xff, 0xff, 0xff), status.INVALID_ARGUMENT],
        ["5 MiB request", new Uint8Array(5 * 1024 * 1024).fill(0x0a), status.RESOURCE_EXHAUSTED],
      ];
      if (!PUBLIC.has(name)) {
        const garbage: common.Signed = { tbs: randomBytes(100), signature: randomBytes(64) };
        const signedField =
          name === "fetchAddPackages" ? { friendshipToken: randomBytes(5) } : { signed: garbage };
        expectations.push(
          [
            "empty request",
            encodeRequest(method, method.requestDeserialize(Buffer.alloc(0))),
            status.INVALID_ARGUMENT,
          ],
          [
            "garbage signed tbs",
            encodeRequest(method, {
              ...(method.requestDeserialize(Buffer.alloc(0)) as object),
              ...signedField,
            }),
            status.INVALID_ARGUMENT,
          ],
        );
      }
      for (const [what, bytes, expected] of expectations) {
        const code = await rawCall(method.path, bytes);
        results.push(`${name} ${what}: ${status[code]}`);
        expect(`${name} ${what}: ${status[code]}`).toBe(`${name} ${what}: ${status[expected]}`);
      }
    }
    expect(results.length).toBeGreaterThan(40);
    expect(await state()).toBe(before);
  });

  it("refuses well-signed requests with bad fields, naming the field, and changes nothing", async () => {
    const before = await state();
    const group = { uuid: randomBytes(3), domain: "alpha.example" };
    const calls: [string, () => Promise<unknown>, number][] = [
      [
        "CreateClient key length",
        async () =>
          h.client.createClient({
            signed: await alice.userSigned(queue.CreateClientTbs, "createClient", {
              clientRecordAuthKey: randomBytes(31),
              queueEncryptionKey: randomBytes(32),
              sealedPushToken: new Uint8Array(),
            }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "UpdateUser token length",
        async () =>
          h.client.updateUser({
            signed: await alice.userSigned(queue.UpdateUserTbs, "updateUser", {
              userRecordAuthKey: alice.user.userKey.publicKey,
              friendshipToken: randomBytes(31),
            }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "UpdateClient queue key",
        async () =>
          h.client.updateClient({
            signed: await alice.signed(queue.UpdateClientTbs, "updateClient", {
              clientRecordAuthKey: alice.clientKey.publicKey,
              queueEncryptionKey: randomBytes(12),
            }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "SetPushToken garbage",
        async () =>
          h.client.setPushToken({
            signed: await alice.signed(queue.SetPushTokenTbs, "setPushToken", {
              sealedPushToken: randomBytes(200),
            }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "SetPushToken oversized",
        async () =>
          h.client.setPushToken({
            signed: await alice.signed(queue.SetPushTokenTbs, "setPushToken", {
              sealedPushToken: randomBytes(5000),
            }),
          }),
        status.RESOURCE_EXHAUSTED,
      ],
      [
        "PublishAddPackages empty",
        async () =>
          h.client.publishAddPackages({
            signed: await alice.signed(queue.PublishAddPackagesTbs, "publishAddPackages", {
              addPackages: [],
            }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "Dequeue beyond the queue",
        async () =>
          h.client.dequeue({
            signed: await alice.signed(queue.DequeueTbs, "dequeue", {
              sequenceNumberStart: 99n,
              maxMessages: 0,
            }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "BlockGroup short uuid",
        async () =>
          h.client.blockGroup({
            signed: await alice.signed(queue.BlockGroupTbs, "blockGroup", { groupId: group }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "UnblockGroup missing group",
        async () =>
          h.client.unblockGroup({
            signed: await alice.signed(queue.UnblockGroupTbs, "unblockGroup", { groupId: undefined }),
          }),
        status.INVALID_ARGUMENT,
      ],
      [
        "FetchAddPackages bad domain",
        () => h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: "Not A Domain" }),
        status.INVALID_ARGUMENT,
      ],
    ];
    for (const [what, call, expected] of calls) {
      const code = await call().then(
        () => status.OK,
        (error: { code: number }) => error.code,
      );
      expect(`${what}: ${status[code]}`).toBe(`${what}: ${status[expected]}`);
    }
    expect(await state()).toBe(before);
  });

  it("ends a Listen stream that starts with garbage with INVALID_ARGUMENT", async () => {
    const call = h.client.listen();
    await call.send({
      request: { $case: "init", value: { tbs: randomBytes(40), signature: randomBytes(64) } },
    });
    const code = await (async () => {
      try {
        for await (const _ of call.responses) {
          // nothing is expected
        }
        return status.OK;
      } catch (error) {
        return (error as { code: number }).code;
      }
    })();
    expect(status[code]).toBe("INVALID_ARGUMENT");
  });
});
