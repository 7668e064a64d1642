// REST with plain fetch: the homeserver's edge gateway as any HTTP client sees it — JSON bodies in
// the proto3 JSON mapping (bytes as base64, 64-bit integers as strings, default values omitted),
// errors as google.rpc.Status. Only signing needs the SDK: the signed bytes are a protobuf
// message (@phoenix/proto) under a labelled Ed25519 signature (@phoenix/crypto).
//
//   node --conditions=source --import tsx examples/rest-fetch/rest-fetch.ts --server http://127.0.0.1:8080
//
// It does:
//   1. GET  /openapi.json            the API description (every route, its JSON schema and docs);
//   2. GET  /v1/as/credentials       public: the homeserver's domain and AS credentials;
//   3. POST /v1/as/handles           signed (proof of possession): claims a fresh handle;
//   4. POST /v1/as/handles/check     public: the handle is taken;
//   5. POST /v1/as/handles           the same handle again: 409, a google.rpc.Status body;
//   6. POST /v1/as/handles/delete    signed with the handle's key: the handle is free again.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { AsCredential, HpkeKeyPair, handleHash, SigningKey, toHex } from "@phoenix/crypto";
import { auth, type common, type MessageEncoder, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";

const { values } = parseArgs({ options: { server: { type: "string" } } });
const server = (values.server ?? process.env.PHOENIX_SERVER ?? "http://127.0.0.1:8080").replace(/\/$/, "");

/** JSON over HTTP; returns the status and the parsed body (a google.rpc.Status on failure). */
async function call(
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${server}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const json = (await response.json()) as Json;
  console.log(`${method} ${path} -> ${response.status} ${JSON.stringify(json).slice(0, 300)}`);
  return { status: response.status, json };
}

type Json = { [key: string]: unknown };

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

/**
 * The JSON form of `Signed { tbs, signature }`: the RPC's `…Tbs` message, header first (label =
 * the RPC's full name, timestamp, random request id), encoded once; the signature covers exactly
 * those bytes, and the gateway forwards them unchanged, so it stays valid through JSON.
 */
async function signedJson<T extends { header: common.RequestHeader | undefined }>(
  type: MessageEncoder<T>,
  method: { path: string },
  body: Omit<T, "header">,
  key: SigningKey,
  sender: common.RequestHeader["sender"],
): Promise<{ tbs: string; signature: string }> {
  const tbs = { ...body, header: requestHeader(rpcLabel(method), sender) } as T;
  const signed = await signTbs(type, tbs, (label, bytes) => key.sign(label, bytes));
  return { tbs: base64(signed.tbs), signature: base64(signed.signature) };
}

function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`unexpected answer: ${what}`);
}

async function main(): Promise<void> {
  // 1. What the gateway serves.
  const openapi = await fetch(`${server}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
  const doc = (await openapi.json()) as { info: { title: string }; paths: Record<string, unknown> };
  console.log(`openapi: "${doc.info.title}", ${Object.keys(doc.paths).length} paths`);

  // 2. Public: the AS credentials. `domain` "" (or no parameter) means this homeserver.
  const credentials = await call("GET", "/v1/as/credentials");
  expect(credentials.status === 200, "GET /v1/as/credentials");
  console.log(`domain: ${credentials.json.domain}`);
  for (const encoded of credentials.json.asCredentials as string[]) {
    // bytes fields are base64; this one is a libs/crypto AsCredential (self-signed root).
    const root = AsCredential.decode(fromBase64(encoded));
    root.verifySelfSignature();
    console.log(`as root verifying key: ${toHex(root.verifyingKey.bytes)}`);
  }

  // 3. Signed: claim a handle with a fresh key (the first request proves we hold it).
  const handle = `rest-${toHex(new Uint8Array(randomBytes(4)))}`;
  const hash = handleHash(handle);
  const handleKey = SigningKey.generate();
  const sender = { $case: "handleHash" as const, value: hash };
  const createBody = async () => ({
    signed: await signedJson(
      auth.CreateHandleTbs,
      auth.AuthServiceService.createHandle,
      {
        handle,
        handleHash: hash,
        verifyingKey: handleKey.publicKey,
        connectionQueueEncryptionKey: HpkeKeyPair.generate().publicKey.bytes,
      },
      handleKey,
      sender,
    ),
  });
  const created = await call("POST", "/v1/as/handles", await createBody());
  expect(created.status === 200, "POST /v1/as/handles");
  console.log(`created handle ${handle}, expires ${created.json.expiresAt}`);

  // 4. Public: is it taken? (request fields in JSON: bytes as base64)
  const check = await call("POST", "/v1/as/handles/check", { handleHash: base64(hash) });
  console.log(`handle exists: ${check.json.exists === true}`);

  // 5. Errors are google.rpc.Status: `code` (gRPC), `message`, `details` (ErrorDetail).
  const again = await call("POST", "/v1/as/handles", await createBody());
  console.log(`again: HTTP ${again.status}, code ${again.json.code}: ${again.json.message}`);

  // 6. Signed with the handle's key: delete it. Responses omit fields at their default value,
  //    so `{}` from the check means `exists: false`.
  const deleted = await call("POST", "/v1/as/handles/delete", {
    signed: await signedJson(
      auth.DeleteHandleTbs,
      auth.AuthServiceService.deleteHandle,
      {},
      handleKey,
      sender,
    ),
  });
  expect(deleted.status === 200, "POST /v1/as/handles/delete");
  const after = await call("POST", "/v1/as/handles/check", { handleHash: base64(hash) });
  console.log(`deleted handle ${handle}; handle exists: ${after.json.exists === true}`);
}

main().catch((error: unknown) => {
  console.error(`rest-fetch: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
