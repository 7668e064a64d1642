// The package test's consumer: what a client developer writes against the installed packages.
// scripts/package-test.sh copies it into a scratch project outside the repository, compiles it
// with "strict" (tsconfig.json beside it) and runs it against a homeserver:
//   node consumer.js <edge gateway URL> <federation gateway host:port> <store directory>
// It exits 0 when two users connected and a message arrived, non-zero with a reason otherwise.
import { existsSync } from "node:fs";
import { join, sep } from "node:path";
import { type Contact, createRestTransport, type Message, PhoenixClient } from "@phoenix/client";
import { ed25519Generate, ed25519PublicKey, ed25519Sign, ed25519Verify } from "@phoenix/crypto";
import { createNodeCryptoProvider } from "@phoenix/mls";
import {
  type FederationServiceClient,
  FederationServiceDefinition,
  protoFiles,
  protoRoot,
  rpcCatalog,
} from "@phoenix/proto";
import { GrpcCallError, mlsGroupId } from "@phoenix/wire";
import { createChannel, createClient } from "nice-grpc";

const [url, federationAddress, storeDir] = process.argv.slice(2);
if (url === undefined || federationAddress === undefined || storeDir === undefined) {
  throw new Error("usage: node consumer.js <edge gateway URL> <federation host:port> <store directory>");
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
}

/** Syncs `client` until `done()` holds (bounded: 40 rounds). */
async function syncUntil(client: PhoenixClient, done: () => boolean, what: string): Promise<void> {
  for (let round = 0; round < 40; round++) {
    await client.sync();
    if (done()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`gave up waiting for ${what}`);
}

// @phoenix/crypto: a signature made with a fresh key verifies, a changed message does not.
const keys = ed25519Generate();
const signed = new TextEncoder().encode("package test");
const signature = ed25519Sign(keys.privateKey, signed);
check(ed25519Verify(ed25519PublicKey(keys.publicKey), signed, signature), "Ed25519 signature verifies");
check(
  !ed25519Verify(ed25519PublicKey(keys.publicKey), new Uint8Array(3), signature),
  "a wrong message fails",
);

// @phoenix/mls and @phoenix/wire: the crypto provider loads; a qualified group id encodes.
check(typeof createNodeCryptoProvider().getCiphersuiteImpl === "function", "MLS crypto provider");
const groupId = mlsGroupId({ uuid: new Uint8Array(16).fill(7), domain: "localhost" });
check(groupId.length === 16 + "localhost".length, "mlsGroupId is uuid ‖ domain");

// @phoenix/proto: the embedded catalog and the shipped .proto files.
check(
  rpcCatalog().some((rpc) => rpc.method === "RegisterUser"),
  "rpcCatalog lists RegisterUser",
);
check(
  protoRoot.includes(`${sep}node_modules${sep}@phoenix${sep}proto${sep}`),
  `protoRoot in the package (${protoRoot})`,
);
check(protoFiles().length > 0, "protoFiles lists the contracts");
for (const file of protoFiles()) check(existsSync(join(protoRoot, file)), `${file} is in the package`);

// One raw SDK call: the generated definition with a nice-grpc client, to the federation gateway.
const federation: FederationServiceClient = createClient(
  FederationServiceDefinition,
  createChannel(federationAddress),
);
const domainKeys = await federation.getDomainKeys({}, { signal: AbortSignal.timeout(10_000) });
check(domainKeys.domain === "localhost", `GetDomainKeys answers for localhost (got ${domainKeys.domain})`);
check(domainKeys.keys.length > 0, "GetDomainKeys returns at least one key");
console.log(`raw SDK: GetDomainKeys → ${domainKeys.domain}, ${domainKeys.keys.length} key(s)`);

// @phoenix/client over the edge gateway: register two users, connect them, send, receive.
const transport = createRestTransport(url);
const register = (name: string): Promise<PhoenixClient> =>
  PhoenixClient.register({
    transport,
    storePath: join(storeDir, `${name}.sqlite`),
    domain: "localhost",
    displayName: name,
  });
const alice = await register("alice");
const bob = await register("bob");
try {
  await alice.connect(bob.userId);
  await syncUntil(bob, () => bob.connectionRequests().some((r) => r.userId === alice.userId), "the request");
  const request = bob.connectionRequests().find((r) => r.userId === alice.userId && r.status === "pending");
  if (request === undefined) throw new Error("no pending request from alice");
  await bob.acceptConnection(request.id);
  const isBob = (c: Contact): boolean => c.userId === bob.userId;
  await syncUntil(alice, () => alice.contacts().some(isBob), "bob as alice's contact");
  const conversation = alice.contacts().find(isBob)?.conversationId;
  if (conversation === undefined) throw new Error("no conversation with bob");
  await alice.sendMessage(conversation, "hello from the package test");
  const received = (): Message | undefined =>
    bob.messages(conversation).find((m) => m.kind === "text" && m.body === "hello from the package test");
  await syncUntil(bob, () => received() !== undefined, "the message");
  check(received()?.sender === alice.userId, "the message's sender is alice");
  console.log(`client: ${alice.userId} → ${bob.userId}: "${received()?.body}"`);
} catch (error) {
  if (error instanceof GrpcCallError) console.error(`gRPC status ${error.code}: ${error.message}`);
  throw error;
} finally {
  await alice.close();
  await bob.close();
}
console.log("consumer: ok");
