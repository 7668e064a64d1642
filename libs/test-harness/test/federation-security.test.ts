// What a homeserver refuses from the federation: requests not signed by the domain they claim,
// replayed requests, and a domain its policy does not allow. alpha federates with beta only;
// rogue.test runs a complete homeserver that would federate with alpha, but alpha's allowlist
// does not name it.
import { status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { FederationRefusedError } from "@phoenix/client";
import { type SigningKey, SigningKey as SigningKeys, toHex } from "@phoenix/crypto";
import { type common, type events, federation, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { createChannel, createServiceClient, GrpcCallError } from "@phoenix/runtime/grpc";
import { fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Federation, startFederation } from "../src/index.js";

const ALPHA = "alpha.test";
const BETA = "beta.test";
const ROGUE = "rogue.test";
const DELIVER = rpcLabel(federation.FederationServiceService.deliverFanOut);

/** A DeliverFanOut request of `sender` signed with `key` (its own, or not). */
function signedAs(
  sender: string,
  key: SigningKey,
  envelope: events.FederationEnvelope,
): Promise<common.Signed> {
  return signTbs(
    federation.DeliverFanOutTbs,
    { header: requestHeader(DELIVER, { $case: "domain", value: sender }), envelope },
    (label, bytes) => key.sign(label, bytes),
  );
}

describe("federation requests a homeserver refuses", () => {
  let fed: Federation;

  beforeAll(async () => {
    fed = await startFederation({
      domains: [ALPHA, BETA, ROGUE],
      policy: { [ALPHA]: { allowed: [BETA] }, [ROGUE]: { allowed: [ALPHA] } },
      captureLogs: true,
    });
  }, 180_000);
  afterAll(async () => {
    await fed?.stopAll();
  }, 60_000);

  /**
   * Records the dedupe ids (hex envelope ids) of everything alpha's gateway hands to alpha's QS
   * from now on. Read off the wire (the publishes on the fan-out subject): the stream itself is a
   * work queue, so alpha's QS takes a fan-out out of it as soon as it handled it.
   */
  async function recordFanOutsAtAlpha(): Promise<{ ids: string[]; stop(): Promise<void> }> {
    const nc = await connect({ servers: process.env.NATS_URL as string });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(fed.homeserver(ALPHA).streams.fanOut);
    const ids: string[] = [];
    nc.subscribe(info.config.subjects[0] as string, {
      callback: (_err, msg) => {
        const id = msg.headers?.get("Nats-Msg-Id");
        if (id) ids.push(id);
      },
    });
    await nc.flush();
    return {
      ids,
      stop: async () => {
        if (nc.isClosed()) return;
        await nc.flush();
        await nc.close();
      },
    };
  }

  it("a forged and a replayed request are refused with UNAUTHENTICATED and deliver nothing", async () => {
    const channel = createChannel(fed.homeserver(ALPHA).federationAddress);
    const gateway = createServiceClient(federation.FederationServiceService, channel);
    const recorded = await recordFanOutsAtAlpha();
    try {
      // Forged: claims beta, signed with a key that is not beta's.
      const forged = fanOutEnvelope(BETA, ALPHA);
      const forgedCall = await gateway
        .deliverFanOut({ signed: await signedAs(BETA, SigningKeys.generate(), forged) })
        .catch((e: unknown) => e);
      expect(forgedCall).toBeInstanceOf(GrpcCallError);
      expect((forgedCall as GrpcCallError).code).toBe(status.UNAUTHENTICATED);

      // Replayed: beta's genuine signature, the same signed bytes twice.
      const genuine = fanOutEnvelope(BETA, ALPHA);
      const signed = await signedAs(BETA, fed.homeserver(BETA).federationKey, genuine);
      await gateway.deliverFanOut({ signed });
      const replay = await gateway.deliverFanOut({ signed }).catch((e: unknown) => e);
      expect(replay).toBeInstanceOf(GrpcCallError);
      expect((replay as GrpcCallError).code).toBe(status.UNAUTHENTICATED);

      // The gateway answers OK only once the bus stored the fan-out, and refuses before storing:
      // the genuine request is there once, the forged one not at all.
      await recorded.stop();
      const delivered = recorded.ids;
      expect(delivered.filter((id) => id === toHex(genuine.envelopeId))).toHaveLength(1);
      expect(delivered).not.toContain(toHex(forged.envelopeId));
    } finally {
      await recorded.stop();
      channel.close();
    }
  }, 60_000);

  it("a domain outside alpha's allowlist cannot reach alpha's users, and alpha's users cannot reach it", async () => {
    const alice = await fed.client(ALPHA, "Alice");
    const mallory = await fed.client(ROGUE, "Mallory");

    // rogue's gateway forwards the request; alpha's gateway refuses its signature's domain.
    const inbound = await mallory.connect(alice.userId).catch((e: unknown) => e);
    expect(inbound).toBeInstanceOf(FederationRefusedError);
    expect((inbound as FederationRefusedError).message).toMatch(
      /rogue\.test and alpha\.test do not federate/,
    );
    expect(((inbound as Error).cause as GrpcCallError).code).toBe(status.PERMISSION_DENIED);

    // alpha's gateway logged whom it refused.
    expect(
      fed
        .homeserver(ALPHA)
        .logs.some(
          (l) =>
            l.service === "federation-gateway" &&
            l.msg === "refused a federation request from a denied peer" &&
            l.peer === ROGUE,
        ),
    ).toBe(true);

    // alpha's own gateway refuses to forward to a domain its policy does not allow.
    const outbound = await alice.connect(mallory.userId).catch((e: unknown) => e);
    expect(outbound).toBeInstanceOf(FederationRefusedError);
    expect(((outbound as Error).cause as GrpcCallError).code).toBe(status.PERMISSION_DENIED);

    // Nothing reached either side.
    expect((await alice.sync()).errors).toEqual([]);
    expect(alice.connectionRequests()).toEqual([]);
    expect(alice.conversations()).toEqual([]);
    expect(mallory.contacts()).toEqual([]);
  }, 60_000);
});
