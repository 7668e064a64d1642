import { Client, credentials, type Metadata, status } from "@grpc/grpc-js";
import { handleHash, randomBytes, SigningKey } from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, registerUser, S, sign, startAuth } from "./support/harness.js";

const MAX_MESSAGE = 64 * 1024;
const identity = (b: Buffer) => b;

/** A well-formed request for every RPC (signed ones carry a bogus signature), as protobuf bytes. */
function validEncoding(method: keyof typeof S): Uint8Array {
  const signed = { tbs: randomBytes(40), signature: randomBytes(64) };
  const def = S[method];
  if (def.requestStream) {
    return auth.ListenConnectionOffersRequest.encode({ request: { $case: "init", value: signed } }).finish();
  }
  const userId = { uuid: randomBytes(16), domain: "alpha.example" };
  const plain: Record<string, Uint8Array> = {
    getAsCredentials: auth.GetAsCredentialsRequest.encode({ domain: "alpha.example" }).finish(),
    getUserProfile: auth.GetUserProfileRequest.encode({ userId, keyIndex: randomBytes(32) }).finish(),
    checkHandleExists: auth.CheckHandleExistsRequest.encode({
      handleHash: randomBytes(32),
      domain: "alpha.example",
    }).finish(),
    getConnectionPackages: auth.GetConnectionPackagesRequest.encode({ userId }).finish(),
    getHandleConnectionPackage: auth.GetHandleConnectionPackageRequest.encode({
      handleHash: randomBytes(32),
      domain: "alpha.example",
    }).finish(),
    enqueueConnectionOffer: auth.EnqueueConnectionOfferRequest.encode({
      clientId: { user: userId, clientUuid: randomBytes(16) },
      connectionOffer: randomBytes(100),
    }).finish(),
    enqueueHandleConnectionOffer: auth.EnqueueHandleConnectionOfferRequest.encode({
      handleHash: randomBytes(32),
      domain: "",
      connectionOffer: randomBytes(100),
    }).finish(),
    startPasswordLogin: auth.StartPasswordLoginRequest.encode({
      userId,
      credentialRequest: randomBytes(96),
    }).finish(),
    finishPasswordLogin: auth.FinishPasswordLoginRequest.encode({
      loginId: randomBytes(16),
      credentialFinalization: randomBytes(64),
    }).finish(),
  };
  // Every other RPC's request is `{ Signed signed = 1; }`.
  return plain[method] ?? auth.DeleteUserRequest.encode({ signed }).finish();
}

/** Inputs that must be refused with INVALID_ARGUMENT or RESOURCE_EXHAUSTED. */
function badInputs(method: keyof typeof S): { name: string; bytes: Uint8Array; codes: number[] }[] {
  const valid = validEncoding(method);
  const bad = [status.INVALID_ARGUMENT];
  return [
    // Field 1, length-delimited, with a length far beyond the message.
    { name: "malformed length", bytes: Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01), codes: bad },
    // Wire type 7 does not exist.
    { name: "invalid wire type", bytes: Uint8Array.of(0x0f, 0x01, 0x02), codes: bad },
    { name: "truncated", bytes: valid.subarray(0, valid.length - 1), codes: bad },
    { name: "truncated in half", bytes: valid.subarray(0, Math.ceil(valid.length / 2)), codes: bad },
    { name: "random garbage", bytes: Uint8Array.of(0x0a, 0x05, ...randomBytes(5)), codes: bad },
    {
      name: "oversized",
      bytes: new Uint8Array(MAX_MESSAGE + 1024).fill(0x41),
      codes: [status.RESOURCE_EXHAUSTED],
    },
  ];
}

function callUnary(client: Client, path: string, bytes: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      Buffer.from(bytes),
      { deadline: Date.now() + 10_000 },
      (error) => resolve(error ? error.code : status.OK),
    );
  });
}

function callBidi(client: Client, path: string, bytes: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(path, identity, identity, { deadline: Date.now() + 10_000 });
    call.on("data", () => {});
    call.on("error", () => {});
    call.on("status", (s: { code: number; metadata: Metadata }) => resolve(s.code));
    call.write(Buffer.from(bytes));
  });
}

/** Every row of every AS table, as text (bytea in hex), to compare database states. */
async function snapshot(h: Harness): Promise<string> {
  const tables = [
    "as_credentials",
    "revoked_credentials",
    "users",
    "user_profiles",
    "clients",
    "handles",
    "connection_queues",
    "queue_messages",
    "connection_packages",
    "password_records",
    "password_logins",
    "add_client_grants",
    "phoenix_runtime.seen_requests",
  ];
  const parts: string[] = [];
  for (const table of tables) {
    const result = (await h.db.db.execute(
      sql.raw(`SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') AS rows FROM ${table} t`),
    )) as unknown as { rows: { rows: string }[] };
    parts.push(`${table}: ${result.rows[0]?.rows ?? ""}`);
  }
  return parts.join("\n");
}

describe("malformed, truncated and oversized input on every RPC", () => {
  let h: Harness;
  let raw: Client;
  beforeAll(async () => {
    h = await startAuth({ GRPC_MAX_MESSAGE_BYTES: String(MAX_MESSAGE) });
    raw = new Client(h.address, credentials.createInsecure());
    // Some state, so "unchanged" means something.
    const alice = await registerUser(h);
    await h.as.enqueueConnectionOffer({ clientId: alice.wireId, connectionOffer: randomBytes(64) });
    const key = SigningKey.generate();
    const handle = "malformed-test";
    await h.as.createHandle({
      signed: await sign(
        auth.CreateHandleTbs,
        S.createHandle,
        {
          handle,
          handleHash: handleHash(handle),
          verifyingKey: key.publicKey,
          connectionQueueEncryptionKey: alice.queueKey.publicKey.bytes,
        },
        key,
        { $case: "handleHash", value: handleHash(handle) },
        h.now(),
      ),
    });
  });
  afterAll(async () => {
    raw?.close();
    await h?.close();
  });

  it("answers INVALID_ARGUMENT or RESOURCE_EXHAUSTED and leaves the database unchanged", async () => {
    const before = await snapshot(h);
    expect(before).toMatch(/^users: \(.+\)$/m);
    // The raw path works: a well-formed public request succeeds.
    expect(await callUnary(raw, S.getAsCredentials.path, validEncoding("getAsCredentials"))).toBe(status.OK);
    const methods = Object.keys(S) as (keyof typeof S)[];
    expect(methods).toHaveLength(30);
    const failures: string[] = [];
    for (const method of methods) {
      const def = S[method];
      for (const input of badInputs(method)) {
        const code = def.requestStream
          ? await callBidi(raw, def.path, input.bytes)
          : await callUnary(raw, def.path, input.bytes);
        if (!input.codes.includes(code)) failures.push(`${method} ${input.name}: got ${status[code]}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await snapshot(h)).toBe(before);
    // The service still works.
    expect((await h.as.getAsCredentials({ domain: "" })).asCredentials).toHaveLength(1);
  });

  it("refuses signed requests whose tbs does not decode, without a trace", async () => {
    const before = await snapshot(h);
    const error = await h.as
      .deleteUser({ signed: { tbs: Uint8Array.of(0x0a, 0xff, 0x01), signature: randomBytes(64) } })
      .catch((e: { code: number }) => e);
    expect(error).toMatchObject({ code: status.INVALID_ARGUMENT });
    const detail = common.ErrorDetail.decode(
      (error as { details: { value: Uint8Array }[] }).details[0]!.value,
    );
    expect(detail.reason).toBe(common.ErrorReason.ERROR_REASON_MALFORMED);
    expect(await snapshot(h)).toBe(before);
  });
});
