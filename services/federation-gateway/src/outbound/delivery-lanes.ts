import { status } from "@grpc/grpc-js";
import { isValidDomain, toHex } from "@phoenix/crypto";
import {
  type Bus,
  type BusMessage,
  type BusSubjects,
  busSubjects,
  domainOfPeerSubjectToken,
  federationOutboundStream,
  federationOutboundSubject,
  OUTBOUND_SCOUT_DURABLE,
  outboundLaneDurable,
  type Subscription,
} from "@phoenix/runtime/bus";
import type { Database, DatabaseHandle } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import type { Worker } from "@phoenix/runtime/module";
import { type BackoffConfig, backoffDelay } from "../domain/backoff.js";
import type { FederationPolicy } from "../domain/policy.js";
import type { GatewayMetrics } from "../gateway-metrics.js";
import { addOutboundPeer, loadOutboundPeers } from "../store/envelope-store.js";
import type { PeerActivity } from "../store/peer-stats.js";
import { decodeOutbound, type PeerSender } from "./peer-sender.js";

export interface DeliveryLanesOptions {
  bus: Bus;
  db: Database;
  logger: Logger;
  ownDomain: string;
  policy: FederationPolicy;
  /** Counts deliveries and failures per peer (ListPeers). */
  activity?: PeerActivity;
  sender: PeerSender;
  stream: string;
  /** Prefix of the bus subjects (`""` in deployments). */
  subjectPrefix: string;
  /** Lane durables are `<consumerPrefix>-out-<peer>` (outboundLaneDurable). */
  consumerPrefix: string;
  backoff: BackoffConfig;
  /** Deadline of one delivery attempt (the lease covers attempt + backoff). */
  attemptTimeoutMs: number;
  /** Redelivery delay of a message whose gateway died while holding it (at least attempt + backoff). */
  leaseMs: number;
  /**
   * The database's cross-process lock (DatabaseHandle.tryWithLock): replicas elect one deliverer.
   * Without it this instance delivers unconditionally (one replica only).
   */
  lock?: DatabaseHandle["tryWithLock"] | undefined;
  /** How often a standby replica tries to take over delivery. */
  standbyRetryMs: number;
  metrics: GatewayMetrics;
}

/** Advisory lock held by the replica that delivers outbound traffic ("fedgwout"). */
const OUTBOUND_LOCK = 0x66656467_776f7574n;

/** Status codes after which retrying the same envelope cannot succeed: it is dropped (and logged). */
const PERMANENT = new Set<number>([
  status.INVALID_ARGUMENT,
  status.UNIMPLEMENTED,
  status.FAILED_PRECONDITION,
]);

/**
 * QS-to-QS delivery: one durable consumer ("lane") per peer domain over the outbound federation
 * stream, so a peer that is down holds back only its own messages. A lane has one message in
 * flight and keeps it, retrying with exponential backoff, until the peer accepted it, so
 * nothing overtakes the head: the peer receives its messages in stream order (hence in order per
 * queue), also after being down for hours. A scout consumer over the whole stream notices peers without a lane; lanes are
 * remembered in the database and restart with the gateway. The gateway's worker "outbound lanes".
 */
export class DeliveryLanes implements Worker {
  readonly name = "outbound lanes";
  private readonly lanes = new Map<string, Promise<Subscription | undefined>>();
  private readonly failures = new Map<string, number>();
  private scout: Subscription | undefined;
  /** The lanes' subscriptions once started: their intake stops before their handlers see a term end. */
  private readonly running = new Set<Subscription>();
  private readonly stopping = new AbortController();
  /** Fires when this replica's leadership term ends (stop, or the outbound lock was lost). */
  private term: AbortSignal = AbortSignal.abort();
  private leading: Promise<void> | undefined;

  private readonly subjects: BusSubjects;

  constructor(private readonly options: DeliveryLanesOptions) {
    this.subjects = busSubjects(options.subjectPrefix);
  }

  /** The outbound subject of `peer`. */
  subjectOf(peer: string): string {
    return federationOutboundSubject(this.subjects, peer);
  }

  /**
   * Ensures the stream and starts delivering: at once when there is no lock (a single replica),
   * else whenever this replica holds the outbound lock — one replica delivers at a time, so two
   * replicas never send messages of the same peer in parallel (which would break the order).
   */
  async start(): Promise<void> {
    const { bus, stream } = this.options;
    await bus.ensureStream(federationOutboundStream(stream, this.subjects.federationOutboundPattern));
    const lock = this.options.lock;
    if (lock === undefined) await this.beginTerm(this.termSignal(this.stopping.signal));
    else this.leading = this.lead(lock);
  }

  /** Stops the scout and every lane (a lane waiting out a backoff gives its message back at once). */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.leading) await this.leading;
    else await this.endTerm();
  }

  /** True while this replica delivers (holds the outbound lock, or runs without one). */
  get delivering(): boolean {
    return !this.term.aborted;
  }

  /** The number of lanes running (metrics, tests). */
  get laneCount(): number {
    return this.lanes.size;
  }

  /** The peer domains with a lane on this replica (none on a standby replica). */
  get peers(): string[] {
    return [...this.lanes.keys()];
  }

  /** The stream and durable of `peer`'s lane. */
  laneOf(peer: string): { stream: string; durable: string } {
    return { stream: this.options.stream, durable: outboundLaneDurable(this.options.consumerPrefix, peer) };
  }

  private async lead(lock: NonNullable<DeliveryLanesOptions["lock"]>): Promise<void> {
    const { logger } = this.options;
    while (!this.stopping.signal.aborted) {
      try {
        const result = await lock(OUTBOUND_LOCK, async (_db, lost) => {
          const term = this.termSignal(linkedSignal(this.stopping.signal, lost));
          this.term = term;
          // The lanes start at once: a message the previous deliverer still held (it crashed, or
          // its give-back is not through yet) blocks only its own lane, by the bus's
          // maxAckPending 1, until it comes back — later messages cannot overtake it.
          logger.info("this replica delivers the outbound federation traffic");
          try {
            await this.beginTerm(term);
            await untilAborted(term);
          } finally {
            await this.endTerm();
          }
          if (lost.aborted) logger.warn("lost the outbound delivery lock; standing by");
        });
        if (result.acquired) continue;
      } catch (err) {
        logger.warn({ err }, "outbound delivery term failed; retrying");
      }
      await sleep(this.options.standbyRetryMs, this.stopping.signal);
    }
  }

  /**
   * The signal lanes see for a term that ends when `end` fires — but only after every lane has
   * stopped taking messages. Were it the other way round, a lane whose handler gives its message
   * back would pull again at once, and the bus could hand the given-back message to that pull
   * just as the lane closes: it would then be held until its ack wait ran out. (The lanes'
   * `maxAckPending: 1` keeps the order even then; this keeps the handover quick.)
   */
  private termSignal(end: AbortSignal): AbortSignal {
    const handlers = new AbortController();
    const halt = (): void => {
      for (const subscription of this.running) void subscription.stop().catch(() => undefined);
      handlers.abort();
    };
    if (end.aborted) halt();
    else end.addEventListener("abort", halt, { once: true });
    return handlers.signal;
  }

  /** The lanes' lease: a held message of a process that died comes back after this long. */
  private ackWaitMs(): number {
    const { leaseMs, attemptTimeoutMs, backoff } = this.options;
    return Math.max(leaseMs, attemptTimeoutMs + backoff.maxMs + 1000);
  }

  private async beginTerm(term: AbortSignal): Promise<void> {
    this.term = term;
    const { bus, stream } = this.options;
    for (const peer of await loadOutboundPeers(this.options.db)) await this.lane(peer);
    // The scout is declared with the stream (interest retention): it holds every message until
    // it has started the lane of the message's peer, so a new peer's first message is not lost.
    this.scout = await bus.consume(
      { stream, durable: OUTBOUND_SCOUT_DURABLE, maxInFlight: 32, ackWaitMs: 30_000 },
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

  private async endTerm(): Promise<void> {
    const scout = this.scout;
    this.scout = undefined;
    await scout?.stop();
    const lanes = await Promise.all([...this.lanes.values()].map((lane) => lane.catch(() => undefined)));
    this.lanes.clear();
    this.running.clear();
    await Promise.all(lanes.map((lane) => lane?.stop()));
  }

  private peerOfSubject(subject: string): string | undefined {
    const root = this.subjects.federationOutboundRoot;
    if (!subject.startsWith(root)) return undefined;
    const domain = domainOfPeerSubjectToken(subject.slice(root.length));
    return isValidDomain(domain) ? domain : undefined;
  }

  private lane(peer: string): Promise<Subscription | undefined> {
    let lane = this.lanes.get(peer);
    if (lane === undefined) {
      lane = this.startLane(peer);
      this.lanes.set(peer, lane);
      lane.then(
        (subscription) => subscription && this.running.add(subscription),
        () => this.lanes.delete(peer),
      );
    }
    return lane;
  }

  private async startLane(peer: string): Promise<Subscription | undefined> {
    const term = this.term;
    if (term.aborted) return undefined;
    if (peer === this.options.ownDomain) {
      this.options.logger.error(
        { peer },
        "outbound messages addressed to this domain itself are never delivered",
      );
      return undefined;
    }
    await addOutboundPeer(this.options.db, peer);
    const subscription = await this.options.bus.consume(
      {
        stream: this.options.stream,
        durable: outboundLaneDurable(this.options.consumerPrefix, peer),
        filterSubject: this.subjectOf(peer),
        maxInFlight: 1,
        // Over all replicas: the bus never hands out the next message while one is held — not
        // even while a message of a replica that stopped or died waits out its ack wait.
        maxAckPending: 1,
        // Only matters when this process dies holding a message: then it comes back after this
        // long. A live lane holds its message past the lease without harm — with its one slot
        // taken it asks the bus for nothing more, and its late ack still counts.
        ackWaitMs: this.ackWaitMs(),
        // A message handed back at shutdown is due at once for the next start.
        retryDelaysMs: [0],
      },
      (msg) => this.deliver(peer, msg, term),
    );
    this.options.logger.info({ peer }, "outbound federation lane started");
    return subscription;
  }

  private async deliver(peer: string, msg: BusMessage, term: AbortSignal): Promise<void> {
    const log = this.options.logger.child({ peer, seq: msg.seq, deliveryCount: msg.deliveryCount });
    let envelope: ReturnType<typeof decodeOutbound>;
    try {
      envelope = decodeOutbound(msg.data);
    } catch (err) {
      log.error({ err }, "dropping an outbound envelope that does not decode");
      this.options.metrics.dropped.inc({ peer, reason: "malformed" });
      return;
    }
    if (envelope.destinationDomain !== peer || envelope.sourceDomain !== this.options.ownDomain) {
      log.error(
        { source: envelope.sourceDomain, destination: envelope.destinationDomain },
        "dropping an outbound envelope with the wrong source or destination",
      );
      this.options.metrics.dropped.inc({ peer, reason: "misaddressed" });
      return;
    }
    const refusal = this.options.policy.refusal(peer);
    if (refusal !== undefined) {
      log.warn(
        { reason: refusal },
        "dropping an outbound envelope: the peer is refused by the federation policy",
      );
      this.options.metrics.dropped.inc({ peer, reason: "policy" });
      this.options.activity?.outboundFailed(peer);
      return;
    }
    // The message stays in this handler until the peer took it (or the gateway stops): failing
    // it back to the bus would free the lane's slot, and the bus could hand out the next message
    // before the redelivery — the peer would see them out of order.
    for (;;) {
      try {
        await this.options.sender.deliver(envelope, term);
        if (this.failures.delete(peer)) log.info("peer reachable again");
        this.options.activity?.outbound(peer);
        this.options.metrics.delivered.inc({
          peer,
          kind: envelope.content?.$case === "queueDeleted" ? "queue_deleted" : "fan_out",
        });
        return;
      } catch (err) {
        if (isPermanent(err)) {
          log.error(
            { err, envelopeId: toHex(envelope.envelopeId) },
            "peer refused an envelope permanently; dropped",
          );
          this.options.metrics.dropped.inc({ peer, reason: "refused" });
          this.options.activity?.outboundFailed(peer);
          return;
        }
        // The term ended: the message goes back to the stream for the next deliverer.
        if (term.aborted) throw err;
        const failures = (this.failures.get(peer) ?? 0) + 1;
        this.failures.set(peer, failures);
        this.options.metrics.deliveryFailures.inc({ peer });
        this.options.activity?.outboundFailed(peer);
        const delay = backoffDelay(failures, this.options.backoff);
        log.warn({ err, failures, retryInMs: delay }, "delivery to peer failed; retrying");
        await sleep(delay, term);
        if (term.aborted) throw err;
      }
    }
  }
}

/**
 * True for failures that a retry of the same envelope cannot fix: the peer called it malformed,
 * or it exceeds the peer's message size limit (grpc-js: "Received message larger than max").
 */
function isPermanent(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code !== "number") return false;
  if (PERMANENT.has(code)) return true;
  return (
    code === status.RESOURCE_EXHAUSTED && typeof message === "string" && /larger than max/i.test(message)
  );
}

/** A signal that fires when either input fires (plain listeners: no AbortSignal.any on Node 20). */
function linkedSignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (a.aborted || b.aborted) abort();
  a.addEventListener("abort", abort, { once: true });
  b.addEventListener("abort", abort, { once: true });
  return controller.signal;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
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
