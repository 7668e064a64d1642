import { status } from "@grpc/grpc-js";
import { sha256, toHex, utf8 } from "@phoenix/crypto";
import type { Bus, BusMessage, Subscription } from "@phoenix/runtime/bus";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import { type BackoffConfig, backoffDelay } from "../domain/backoff.js";
import { domainOfToken, isDomain, peerToken } from "../domain/peers.js";
import type { FederationPolicy } from "../domain/policy.js";
import { addOutboundPeer, loadOutboundPeers } from "../store/envelope-store.js";
import { decodeOutbound, type PeerSender } from "./peer-sender.js";

/** The outbound subject root (events.proto): `<prefix>phoenix.federation.outbound.<peer>`. */
export const OUTBOUND_ROOT = "phoenix.federation.outbound";

export interface DeliveryLanesOptions {
  bus: Bus;
  db: Database;
  logger: Logger;
  ownDomain: string;
  policy: FederationPolicy;
  sender: PeerSender;
  stream: string;
  subjectPrefix: string;
  consumerPrefix: string;
  backoff: BackoffConfig;
  /** Deadline of one delivery attempt (the lease covers attempt + backoff). */
  attemptTimeoutMs: number;
}

/** Status codes after which retrying the same envelope cannot succeed: it is dropped (and logged). */
const PERMANENT = new Set<number>([
  status.INVALID_ARGUMENT,
  status.UNIMPLEMENTED,
  status.FAILED_PRECONDITION,
]);

/**
 * QS-to-QS delivery: one durable consumer ("lane") per peer domain over the outbound federation
 * stream, so a peer that is down holds back only its own messages. A lane has one message in
 * flight: it tries, and on failure waits out the backoff *inside* the handler before failing it
 * for an immediate redelivery — the bus serves redeliveries before newer messages, so nothing
 * overtakes the head and the peer receives its messages in stream order (hence in order per
 * queue). A scout consumer over the whole stream notices peers without a lane; lanes are
 * remembered in the database and restart with the gateway.
 */
export class DeliveryLanes {
  private readonly lanes = new Map<string, Promise<Subscription | undefined>>();
  private readonly failures = new Map<string, number>();
  private scout: Subscription | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly options: DeliveryLanesOptions) {}

  /** The outbound subject of `peer`. */
  subjectOf(peer: string): string {
    return `${this.options.subjectPrefix}${OUTBOUND_ROOT}.${peerToken(peer)}`;
  }

  /** Ensures the stream, starts the lanes of known peers and the scout. */
  async start(): Promise<void> {
    const { bus, stream, subjectPrefix, consumerPrefix } = this.options;
    await bus.ensureStream({ name: stream, subjects: [`${subjectPrefix}${OUTBOUND_ROOT}.>`] });
    for (const peer of await loadOutboundPeers(this.options.db)) await this.lane(peer);
    this.scout = await bus.consume(
      { stream, durable: `${consumerPrefix}-scout`, maxInFlight: 32, ackWaitMs: 30_000 },
      async (msg) => {
        const peer = this.peerOfSubject(msg.subject);
        if (peer === undefined) {
          this.options.logger.error(
            { subject: msg.subject },
            "outbound message on a subject naming no domain",
          );
          return;
        }
        await this.lane(peer);
      },
    );
  }

  /** Stops the scout and every lane (a lane waiting out a backoff gives its message back at once). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.scout?.stop();
    const lanes = await Promise.all(this.lanes.values());
    await Promise.all(lanes.map((lane) => lane?.stop()));
    this.lanes.clear();
  }

  /** The number of lanes running (metrics, tests). */
  get laneCount(): number {
    return this.lanes.size;
  }

  private peerOfSubject(subject: string): string | undefined {
    const root = `${this.options.subjectPrefix}${OUTBOUND_ROOT}.`;
    if (!subject.startsWith(root)) return undefined;
    const domain = domainOfToken(subject.slice(root.length));
    return isDomain(domain) ? domain : undefined;
  }

  private lane(peer: string): Promise<Subscription | undefined> {
    let lane = this.lanes.get(peer);
    if (lane === undefined) {
      lane = this.startLane(peer);
      this.lanes.set(peer, lane);
      lane.catch(() => this.lanes.delete(peer));
    }
    return lane;
  }

  private async startLane(peer: string): Promise<Subscription | undefined> {
    if (this.stopping.signal.aborted) return undefined;
    if (peer === this.options.ownDomain) {
      this.options.logger.error(
        { peer },
        "outbound messages addressed to this domain itself are never delivered",
      );
      return undefined;
    }
    await addOutboundPeer(this.options.db, peer);
    const { backoff, attemptTimeoutMs } = this.options;
    const subscription = await this.options.bus.consume(
      {
        stream: this.options.stream,
        durable: durableName(this.options.consumerPrefix, peer),
        filterSubject: this.subjectOf(peer),
        maxInFlight: 1,
        // The lease covers one attempt plus the longest backoff wait, with room to spare.
        ackWaitMs: attemptTimeoutMs + backoff.maxMs + 30_000,
        // Immediate redelivery: the backoff already happened inside the handler.
        retryDelaysMs: [0],
      },
      (msg) => this.deliver(peer, msg),
    );
    this.options.logger.info({ peer }, "outbound federation lane started");
    return subscription;
  }

  private async deliver(peer: string, msg: BusMessage): Promise<void> {
    const log = this.options.logger.child({ peer, seq: msg.seq, deliveryCount: msg.deliveryCount });
    let envelope: ReturnType<typeof decodeOutbound>;
    try {
      envelope = decodeOutbound(msg.data);
    } catch (err) {
      log.error({ err }, "dropping an outbound envelope that does not decode");
      return;
    }
    if (envelope.destinationDomain !== peer || envelope.sourceDomain !== this.options.ownDomain) {
      log.error(
        { source: envelope.sourceDomain, destination: envelope.destinationDomain },
        "dropping an outbound envelope with the wrong source or destination",
      );
      return;
    }
    const refusal = this.options.policy.refusal(peer);
    if (refusal !== undefined) {
      log.warn(
        { reason: refusal },
        "dropping an outbound envelope: the peer is refused by the federation policy",
      );
      return;
    }
    try {
      await this.options.sender.deliver(envelope, this.stopping.signal);
      if (this.failures.delete(peer)) log.info("peer reachable again");
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === "number" && PERMANENT.has(code)) {
        log.error(
          { err, envelopeId: toHex(envelope.envelopeId) },
          "peer refused an envelope permanently; dropped",
        );
        return;
      }
      const failures = (this.failures.get(peer) ?? 0) + 1;
      this.failures.set(peer, failures);
      const delay = backoffDelay(failures, backoff(this.options));
      log.warn({ err, failures, retryInMs: delay }, "delivery to peer failed; retrying");
      await sleep(delay, this.stopping.signal);
      throw err;
    }
  }
}

function backoff(options: DeliveryLanesOptions): BackoffConfig {
  return options.backoff;
}

/** A durable name per peer (NATS names: letters, digits, "_" and "-"). */
export function durableName(prefix: string, peer: string): string {
  const token = peerToken(peer).replaceAll(/[^A-Za-z0-9_-]/g, "-");
  return token.length <= 48
    ? `${prefix}-out-${token}`
    : `${prefix}-out-${toHex(sha256(utf8(peer))).slice(0, 32)}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
