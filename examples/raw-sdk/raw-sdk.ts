// Raw SDK: the homeserver's gRPC API called directly with @phoenix/proto's generated service
// definition as a nice-grpc promise client, signing requests with @phoenix/crypto — the layer
// @phoenix/client is built on.
//
//   node --conditions=source --import tsx examples/raw-sdk/raw-sdk.ts --as 127.0.0.1:PORT
//
// The AS's gRPC address (`--as` or PHOENIX_AS_ADDRESS) is `services.auth` in the homeserver's
// "homeserver ready" log line: the all-in-one homeserver keeps its gRPC services on loopback,
// apps reach them through the edge gateway (see examples/rest-fetch).
//
// It does:
//   1. GetAsCredentials (public): the AS root and intermediate credentials of the homeserver's
//      domain, decoded and verified — the keys every client credential chains up to;
//   2. CreateHandle (signed, proof of possession): claims a fresh handle with a new Ed25519 key;
//   3. CheckHandleExists (public): the handle is now taken;
//   4. DeleteHandle signed with a key the AS does not know: refused, UNAUTHENTICATED;
//   5. DeleteHandle signed with the handle's key: the handle is free again.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import {
  AsCredential,
  AsIntermediateCredential,
  HpkeKeyPair,
  handleHash,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
// The nice-grpc client half (createChannel, createClient, ClientError, Status, Metadata) comes
// re-exported from @phoenix/proto, so this needs no other gRPC package.
import {
  type AuthServiceClient,
  AuthServiceDefinition,
  auth,
  ClientError,
  common,
  createChannel,
  createClient,
  errorDetailFromMetadata,
  type MessageEncoder,
  type Metadata,
  requestHeader,
  rpcLabel,
  Status,
  signTbs,
} from "@phoenix/proto";

const { values } = parseArgs({ options: { as: { type: "string" } } });
const address = values.as ?? process.env.PHOENIX_AS_ADDRESS;
if (!address) {
  console.error("raw-sdk: give the AS's gRPC address: --as HOST:PORT (or PHOENIX_AS_ADDRESS)");
  process.exit(2);
}

// `host:port` is plaintext, fine on loopback; `https://host:port` would use TLS.
const channel = createChannel(address);
// Unary RPCs return promises; failures reject with nice-grpc's ClientError (code, details).
// (@phoenix/wire's createServiceClient wraps the same clients with deadlines and decoded
// error details; this example stays with plain nice-grpc.)
const as: AuthServiceClient = createClient(AuthServiceDefinition, channel);
/** Every call gets a deadline: the signal aborts it (CANCELLED) after 10 s. */
const bounded = () => ({ signal: AbortSignal.timeout(10_000) });

/** The request header sender of every handle-signed request: the handle's hash. */
function handleSender(hash: Uint8Array): common.RequestHeader["sender"] {
  return { $case: "handleHash", value: hash };
}

/**
 * Signs a request body: the RPC's `…Tbs` message with a fresh header (label = the RPC's full
 * name, timestamp, random request id) is encoded once and those exact bytes are signed, so the
 * server verifies what was signed and replays are refused by request id.
 */
function signed<T extends { header: common.RequestHeader | undefined }>(
  type: MessageEncoder<T>,
  method: { path: string },
  body: Omit<T, "header">,
  key: SigningKey,
  sender: common.RequestHeader["sender"],
): Promise<common.Signed> {
  const tbs = { ...body, header: requestHeader(rpcLabel(method), sender) } as T;
  return signTbs(type, tbs, (label, bytes) => key.sign(label, bytes));
}

async function main(): Promise<void> {
  // 1. The AS credentials of this homeserver (domain "" = the AS's own).
  const creds = await as.getAsCredentials({ domain: "" }, bounded());
  console.log(`domain: ${creds.domain}`);
  const roots = creds.asCredentials.map((bytes) => AsCredential.decode(bytes));
  for (const root of roots) {
    root.verifySelfSignature(); // throws BadSignatureError on a forged root
    console.log(`as root credential ${root.id}`);
    console.log(`  verifying key: ${toHex(root.verifyingKey.bytes)}`);
    console.log(`  valid until:   ${new Date(root.expiration.notAfter).toISOString()}`);
  }
  for (const bytes of creds.asIntermediateCredentials) {
    const intermediate = AsIntermediateCredential.decode(bytes);
    // An intermediate names its root by fingerprint; check the root's signature over it.
    const root = roots.find((r) => toHex(r.fingerprint) === toHex(intermediate.signerFingerprint));
    if (root === undefined) throw new Error(`intermediate ${intermediate.id} has no root here`);
    intermediate.verifySignatures(root.verifyingKey);
    console.log(`as intermediate credential ${intermediate.id} (signed by root ${root.id})`);
    console.log(`  verifying key: ${toHex(intermediate.verifyingKey.bytes)}`);
  }

  // 2. Claim a handle. The AS stores only its scrypt hash; `verifying_key` will sign every
  //    later request about the handle, and this first request proves we hold its private half.
  const handle = `raw-sdk-${toHex(new Uint8Array(randomBytes(4)))}`;
  const hash = handleHash(handle);
  const handleKey = SigningKey.generate();
  const queueKey = HpkeKeyPair.generate(); // connection offers to the handle are sealed to it
  const createRequest: auth.CreateHandleRequest = {
    signed: await signed(
      auth.CreateHandleTbs,
      auth.AuthServiceService.createHandle,
      {
        handle,
        handleHash: hash,
        verifyingKey: handleKey.publicKey,
        connectionQueueEncryptionKey: queueKey.publicKey.bytes,
      },
      handleKey,
      handleSender(hash),
    ),
  };
  const created = await as.createHandle(createRequest, bounded());
  console.log(`created handle ${handle} (expires ${created.expiresAt?.toISOString()})`);

  // 3. Anyone can ask whether a handle is taken, by its hash.
  const exists = async () => (await as.checkHandleExists({ handleHash: hash, domain: "" }, bounded())).exists;
  console.log(`handle exists: ${await exists()}`);

  // 4. The same request signed with another key: the AS refuses it. Errors carry a
  //    machine-readable phoenix.common.v1.ErrorDetail in the `grpc-status-details-bin` trailer,
  //    which nice-grpc hands to `onTrailer`.
  const forged: auth.DeleteHandleRequest = {
    signed: await signed(
      auth.DeleteHandleTbs,
      auth.AuthServiceService.deleteHandle,
      {},
      SigningKey.generate(),
      handleSender(hash),
    ),
  };
  let trailer: Metadata | undefined;
  try {
    await as.deleteHandle(forged, { ...bounded(), onTrailer: (t) => (trailer = t) });
    throw new Error("the AS accepted a request signed with the wrong key");
  } catch (error) {
    if (!(error instanceof ClientError) || error.code !== Status.UNAUTHENTICATED) throw error;
    const detail = errorDetailFromMetadata(trailer);
    const reason = detail ? common.errorReasonToJSON(detail.reason) : "none";
    console.log(`wrong key refused: UNAUTHENTICATED (${error.details}; reason ${reason})`);
  }

  // 5. Signed with the handle's key it goes through.
  const deleteRequest: auth.DeleteHandleRequest = {
    signed: await signed(
      auth.DeleteHandleTbs,
      auth.AuthServiceService.deleteHandle,
      {},
      handleKey,
      handleSender(hash),
    ),
  };
  await as.deleteHandle(deleteRequest, bounded());
  console.log(`deleted handle ${handle}; handle exists: ${await exists()}`);
}

main()
  .catch((error: unknown) => {
    console.error(`raw-sdk: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  })
  .finally(() => channel.close());
