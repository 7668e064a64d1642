// The fuzzer's seed corpus: real, valid, signed requests. Legitimate users run the client's own
// flows (register, handles, connect, group life cycle, messages, listening, deletion) through a
// gRPC transport that records the exact bytes of every request, so mutations start from what the
// real protocol code sends and the users and groups they name exist on the target.
import { PhoenixClient, type Transport } from "@phoenix/client";
import type { SigningKey } from "@phoenix/crypto";
import {
  auth,
  delivery,
  type events,
  federation,
  queue,
  requestHeader,
  rpcLabel,
  signTbs,
} from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { connectUsers, syncUntil } from "../clients.js";
import type { Prng } from "../random-prng.js";
import { randomBytes } from "./mutate.js";
import { type FuzzTarget, PEER_DOMAIN } from "./target.js";

/** Valid encoded requests per gRPC path, in the order they were sent. */
export type Corpus = Map<string, Uint8Array[]>;

interface RecordableMethod {
  path: string;
  requestSerialize(value: never): Buffer;
}

function recording<D extends object>(definition: D, corpus: Corpus): D {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(definition)) {
    const method = value as RecordableMethod;
    out[key] = {
      ...method,
      requestSerialize(request: never): Buffer {
        const bytes = method.requestSerialize(request);
        const list = corpus.get(method.path) ?? [];
        if (list.length < 50) list.push(new Uint8Array(bytes));
        corpus.set(method.path, list);
        return bytes;
      },
    };
  }
  return out as D;
}

/** A gRPC transport to the target's AS, DS and QS that records every request into `corpus`. */
export function recordingTransport(target: FuzzTarget, corpus: Corpus): Transport {
  const channels = [target.addresses.auth, target.addresses.delivery, target.addresses.queue].map((a) =>
    createChannel(a),
  );
  const [a, d, q] = channels as [(typeof channels)[0], (typeof channels)[0], (typeof channels)[0]];
  const defaults = { defaultDeadlineMs: 20_000 };
  return {
    auth: createServiceClient(recording(auth.AuthServiceService, corpus), a, defaults),
    delivery: createServiceClient(recording(delivery.DeliveryServiceService, corpus), d, defaults),
    queue: createServiceClient(recording(queue.QueueServiceService, corpus), q, defaults),
    close() {
      for (const c of channels) c.close();
    },
  };
}

/** The users the legitimate traffic left on the target (still registered). */
export interface LegitimateUsers {
  clients: PhoenixClient[];
  close(): Promise<void>;
}

/**
 * Runs the legitimate traffic: three users, a handle, two connections and one by handle, a group with invite,
 * messages, key update, removal, leaving and listening, and a fourth user who deletes herself.
 * Returns the recorded corpus and the users (kept open: their groups stay live).
 */
export async function legitimateTraffic(
  target: FuzzTarget,
): Promise<{ corpus: Corpus; users: LegitimateUsers }> {
  const corpus: Corpus = new Map();
  const transports: Transport[] = [];
  const clients: PhoenixClient[] = [];
  const register = async (name: string) => {
    const transport = recordingTransport(target, corpus);
    transports.push(transport);
    const client = await PhoenixClient.register({
      transport,
      storePath: ":memory:",
      domain: target.domain,
      displayName: name,
    });
    clients.push(client);
    return client;
  };
  const users: LegitimateUsers = {
    clients,
    async close() {
      for (const c of clients) await c.close().catch(() => undefined);
      for (const t of transports) t.close();
    },
  };
  try {
    const alice = await register("alice");
    const bob = await register("bob");
    const carol = await register("carol");
    await alice.createHandle("alice-fuzz");
    await alice.setDisplayName("Alice F");
    await connectUsers(alice, bob);
    await connectUsers(carol, alice);
    const group = await alice.createConversation("fuzz group");
    await alice.invite(group, [bob.userId, carol.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "bob joins");
    await syncUntil(carol, () => carol.conversations().some((c) => c.id === group), "carol joins");
    await alice.sendMessage(group, "hello");
    await bob.sendMessage(group, "hi");
    await bob.updateKeys(group);
    await alice.remove(group, [carol.userId]);
    await syncUntil(carol, () => true, "carol syncs");
    await bob.refreshContactProfiles();
    const listener = alice.listen();
    // Time passes on purpose: the listening stream opens and runs a while, so the corpus records it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await listener.stop();
    const second = await alice.createConversation("to delete");
    await alice.deleteConversation(second);
    await bob.leave(group);
    await syncUntil(alice, () => true, "alice syncs");
    // A connection by handle (handle packages, handle queue) and an account deleted afterwards.
    const dora = await register("dora");
    await dora.createHandle("dora-fuzz");
    await bob.connectByHandle("dora-fuzz");
    const pending = () =>
      dora.connectionRequests().find((r) => r.direction === "incoming" && r.status === "pending");
    await syncUntil(dora, () => pending() !== undefined, "bob's request by handle");
    await dora.acceptConnection(pending()?.id as number);
    await syncUntil(bob, () => bob.contacts().some((c) => c.userId === dora.userId), "dora as a contact");
    await dora.deleteAccount();
    return { corpus, users };
  } catch (error) {
    await users.close();
    throw error;
  }
}

/** The fake peer's signer: signs a federation `…Tbs` for `path` from {@link PEER_DOMAIN}. */
async function signAsPeer<T extends { header: unknown }>(
  key: SigningKey,
  type: { encode(message: T): { finish(): Uint8Array } },
  path: string,
  body: Omit<T, "header">,
): Promise<Uint8Array> {
  const label = rpcLabel(path);
  const header = requestHeader(label, { $case: "domain", value: PEER_DOMAIN });
  const signed = await signTbs(type as never, { ...body, header } as never, (l, bytes) => key.sign(l, bytes));
  // DeliverFanOut, ReportQueueDeleted and Forward requests are all `{ Signed signed = 1; }`.
  return federation.DeliverFanOutRequest.encode({ signed }).finish();
}

/**
 * A freshly signed (valid signature, fresh request id) federation request for `path` whose body
 * is drawn from `rng`, sometimes built around a recorded client request (Forward). The body is
 * what is mutated: the signature then verifies, so the mutation reaches the code behind it.
 */
export async function federationRequest(
  rng: Prng,
  target: FuzzTarget,
  path: string,
  corpus: Corpus,
): Promise<Uint8Array | undefined> {
  const key = target.peerKey;
  const envelope = (): events.FederationEnvelope => ({
    envelopeId: randomBytes(rng, rng.pick([16, 16, 0, 3, 40])),
    sourceDomain: rng.pick([PEER_DOMAIN, PEER_DOMAIN, target.domain, "", "x".repeat(300)]),
    destinationDomain: rng.pick([target.domain, target.domain, PEER_DOMAIN, "other.invalid", ""]),
    content: rng.chance(0.5)
      ? {
          $case: "fanOut",
          value: {
            fanOutId: randomBytes(rng, 16),
            groupId: {
              uuid: randomBytes(rng, rng.pick([16, 5])),
              domain: rng.pick([PEER_DOMAIN, target.domain]),
            },
            recipients: Array.from({ length: rng.pick([0, 1, 3, 200]) }, () => ({
              domain: rng.pick([target.domain, PEER_DOMAIN, ""]),
              sealedQueueConfig: randomBytes(rng, rng.pick([0, 32, 120])),
            })),
            payload: randomBytes(rng, rng.pick([0, 10, 500])),
            suppressNotifications: rng.chance(0.5),
          },
        }
      : {
          $case: "queueDeleted",
          value: {
            eventId: randomBytes(rng, 16),
            groupId: {
              uuid: randomBytes(rng, rng.pick([16, 5])),
              domain: rng.pick([target.domain, PEER_DOMAIN]),
            },
            recipient: {
              domain: rng.pick([PEER_DOMAIN, target.domain]),
              sealedQueueConfig: randomBytes(rng, rng.pick([32, 120])),
            },
            reportedAt: rng.pick([new Date(), new Date(0), undefined]),
          },
        },
  });
  switch (path) {
    case federation.FederationServiceService.getDomainKeys.path:
      return new Uint8Array();
    case federation.FederationServiceService.deliverFanOut.path:
      return signAsPeer(key, federation.DeliverFanOutTbs, path, { envelope: envelope() });
    case federation.FederationServiceService.reportQueueDeleted.path:
      return signAsPeer(key, federation.ReportQueueDeletedTbs, path, { envelope: envelope() });
    case federation.FederationServiceService.forward.path: {
      const [method, samples] = rng.pick([...corpus.entries()]);
      return signAsPeer(key, federation.ForwardTbs, path, {
        destinationDomain: rng.pick([target.domain, target.domain, PEER_DOMAIN, "nowhere.invalid"]),
        method: rng.chance(0.9)
          ? method
          : rng.pick(["", "/x/y", "/phoenix.federation.v1.FederationService/Forward"]),
        request: rng.pick(samples),
      });
    }
    case federation.FederationProxyServiceService.proxy.path: {
      const [method, samples] = rng.pick([...corpus.entries()]);
      return federation.ProxyRequest.encode({
        destinationDomain: rng.pick([PEER_DOMAIN, "nowhere.invalid", "", target.domain, "a..b"]),
        method,
        request: rng.pick(samples),
      }).finish();
    }
    default:
      return undefined;
  }
}
