// Drives the DS as clients do: real ts-mls members (through libs/mls), Phoenix leaf credentials,
// signed requests over gRPC on 127.0.0.1, fan-outs read back from NATS JetStream.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type SigningKey, toHex } from "@phoenix/crypto";
import {
  addMembers,
  commitRemovesMembers,
  createNodeCryptoProvider,
  createPhoenixGroup,
  joinFromWelcome,
  PHOENIX_CIPHERSUITE,
  processIncoming,
} from "@phoenix/mls";
import {
  common,
  delivery,
  events,
  type MessageEncoder,
  requestHeader,
  rpcLabel,
  signTbs,
} from "@phoenix/proto";
import { type Bus, connectNatsBus, type Subscription } from "@phoenix/runtime/bus";
import { runModule } from "@phoenix/runtime/module";
import { createTestDatabase, eventually, type TestDatabase } from "@phoenix/runtime/testing";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { mlsGroupId } from "../../src/domain/group.js";
import { DELIVERY_MIGRATIONS } from "../../src/index.js";
import { deliveryModuleWith } from "../../src/module.js";
import type { DeliveryService } from "../../src/service.js";
import { DOMAIN, type Member, Pki, User } from "./members.js";

/** The DS_REPLAY_MARKER_KEY of this test process (restarts of a harness keep it). */
const REPLAY_MARKER_KEY = randomBytes(32).toString("hex");

export { DOMAIN, Member, Pki, User } from "./members.js";

export const Service = delivery.DeliveryServiceService;

export function natsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set: run through vitest");
  return url;
}

export function call<Res>(
  start: (done: (err: grpc.ServiceError | null, res: Res) => void) => void,
): Promise<Res> {
  return new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res))));
}

/** The gRPC status code of a failed call (or "ok"). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code] ?? "?";
  }
}

export interface HarnessOptions {
  now?: () => number;
  clientInactivityMs?: number;
  /** Further DS environment variables. */
  env?: Record<string, string>;
  /** false: start no DS here; the test runs one (e.g. as a child process) and calls attach(). */
  inProcess?: boolean;
}

/** A DS of a harness, served over gRPC on loopback. */
export interface DeliveryInstance {
  service: DeliveryService;
  port: number;
  /** Graceful shutdown (drain, then stop the DS); the harness closes its database and bus. */
  stop(): Promise<void>;
}

/** A DS on a fresh Postgres database and unique NATS streams, plus a fan-out collector. */
export class Harness {
  readonly fanOuts: events.FanOut[] = [];
  cs!: CiphersuiteImpl;
  readonly pki = new Pki();
  db!: TestDatabase;
  bus!: Bus;
  running: DeliveryInstance | undefined;
  client!: delivery.DeliveryServiceClient;
  private collector: Subscription | undefined;
  readonly suffix = randomBytes(6).toString("hex");
  clock: () => number = Date.now;

  get fanOutSubject(): string {
    return `t${this.suffix}.phoenix.fanout`;
  }
  get queueDeletedSubject(): string {
    return `t${this.suffix}.phoenix.queue_deleted`;
  }
  get fanOutStream(): string {
    return `DS_FANOUT_${this.suffix}`;
  }
  get queueDeletedStream(): string {
    return `DS_QDEL_${this.suffix}`;
  }

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const h = new Harness();
    if (options.now) h.clock = options.now;
    h.cs = await getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
    h.db = await createTestDatabase({ migrationsFolder: DELIVERY_MIGRATIONS });
    h.bus = await connectNatsBus({ servers: natsUrl(), name: "ds-test" });
    if (options.inProcess !== false) await h.startService(options);
    return h;
  }

  /** The DS's environment in these tests: free ports, unique subjects and streams, a real marker key. */
  env(options: HarnessOptions = {}): Record<string, string> {
    return {
      DS_DOMAIN: DOMAIN,
      DS_REPLAY_MARKER_KEY: REPLAY_MARKER_KEY,
      LOG_LEVEL: "silent",
      GRPC_PORT: "0",
      METRICS_PORT: "0",
      SHUTDOWN_GRACE_MS: "2s",
      DS_FANOUT_SUBJECT: this.fanOutSubject,
      DS_FANOUT_STREAM: this.fanOutStream,
      DS_QUEUE_DELETED_SUBJECT: this.queueDeletedSubject,
      DS_QUEUE_DELETED_STREAM: this.queueDeletedStream,
      DS_RELAY_POLL_INTERVAL: "100ms",
      DS_SWEEP_INTERVAL: "0",
      // Every test calls from 127.0.0.1: the per-caller limit is raised out of the way
      // (group-id-rate-limit.test.ts sets its own).
      DS_CALLER_RATE_GROUP_ID_PER_MINUTE: "1000000",
      ...(options.clientInactivityMs !== undefined
        ? { DS_CLIENT_INACTIVITY: String(options.clientInactivityMs) }
        : {}),
      ...options.env,
    };
  }

  async startService(options: HarnessOptions = {}): Promise<void> {
    this.running = await this.startInstance(options);
    await this.attach(this.running.port);
  }

  /**
   * Runs `deliveryModule` on the harness's database and bus with the harness's clock (unless
   * `now` is given); a second instance is another replica.
   */
  async startInstance(options: HarnessOptions = {}): Promise<DeliveryInstance> {
    const now = options.now ?? (() => this.clock());
    const running = await runModule(deliveryModuleWith({ now }), {
      env: this.env(options),
      signals: false,
      exit: false,
      resources: { database: this.db, bus: this.bus },
    });
    const port = running.grpcPort;
    if (port === undefined) throw new Error("the delivery module serves gRPC");
    return {
      service: running.instance.service,
      port,
      async stop() {
        const code = await running.process.shutdown("stop");
        if (code !== 0) throw new Error(`the delivery service shut down with code ${code}`);
      },
    };
  }

  /** Points the gRPC client at a DS on this port and starts collecting its fan-outs. */
  async attach(port: number): Promise<void> {
    this.client?.close();
    this.client = new delivery.DeliveryServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    if (this.collector === undefined)
      this.collector = await this.bus.consume(
        { stream: this.fanOutStream, durable: "collector" },
        async (m) => {
          this.fanOuts.push(events.FanOut.decode(m.data));
        },
      );
  }

  async stopService(): Promise<void> {
    this.client?.close();
    await this.running?.stop();
  }

  async stop(): Promise<void> {
    await this.stopService();
    await this.collector?.stop();
    await this.bus.close();
    const nc = await connect({ servers: natsUrl() });
    const jsm = await jetstreamManager(nc);
    for (const s of [this.fanOutStream, this.queueDeletedStream])
      await jsm.streams.delete(s).catch(() => false);
    await nc.close();
    await this.db.close();
  }

  user(name: string): User {
    return new User(name, this.pki, this.cs);
  }

  /** Payloads that reached a member's queue, in order. */
  inbox(m: Member): common.QueuePayload[] {
    const q = toHex(m.queue.sealedQueueConfig);
    return this.fanOuts
      .filter((f) => f.recipients.some((r) => toHex(r.sealedQueueConfig) === q))
      .map((f) => common.QueuePayload.decode(f.payload));
  }

  /** Waits until `count` fan-outs were collected (bounded). */
  async waitForFanOuts(count: number, timeoutMs = 10_000): Promise<void> {
    await eventually(() => this.fanOuts.length >= count, { timeoutMs, message: `${count} fan-outs` });
  }

  /** Waits until a payload of this kind reached a member's queue (bounded). */
  async waitForPayload(
    m: Member,
    kind: NonNullable<common.QueuePayload["content"]>["$case"],
    timeoutMs = 10_000,
  ): Promise<common.QueuePayload> {
    return eventually(() => this.inbox(m).find((p) => p.content?.$case === kind), {
      timeoutMs,
      message: `a ${kind} in ${m.name}'s queue`,
    });
  }

  header(label: string, sender: common.RequestHeader["sender"]): common.RequestHeader {
    return requestHeader(label, sender, new Date(this.clock()));
  }

  async sign<T extends { header: common.RequestHeader | undefined }>(
    type: MessageEncoder<T>,
    tbs: T,
    key: SigningKey,
  ): Promise<common.Signed> {
    return signTbs(type, tbs, (label, bytes) => key.sign(label, bytes));
  }
}

/** A group as its test members see it. */
export class TestGroup {
  readonly members: Member[] = [];
  constructor(
    readonly h: Harness,
    readonly groupId: common.QualifiedGroupId,
    /** The group's current EAR key; a commit that removes someone replaces it. */
    public earKey: Uint8Array,
  ) {}

  static async create(h: Harness, creator: Member): Promise<TestGroup> {
    const { groupId } = await call<delivery.RequestGroupIdResponse>((d) => h.client.requestGroupId({}, d));
    if (groupId === undefined) throw new Error("no group id");
    const { state, groupInfo } = await createPhoenixGroup({
      cipherSuite: h.cs,
      groupId: mlsGroupId(groupId),
      keyPackage: creator.keyPackage,
      privateKeyPackage: creator.privateKeyPackage,
      roles: [{ subject: { kind: "pseudonym", pseudonym: creator.pseudonym }, role: "admin" }],
    });
    creator.state = state;
    const g = new TestGroup(h, groupId, new Uint8Array(randomBytes(32)));
    const tbs: delivery.CreateGroupTbs = {
      header: h.header(rpcLabel(Service.createGroup), { $case: "leafIndex", value: 0 }),
      groupId,
      ratchetTree: encodeRatchetTree(state.ratchetTree),
      groupInfo,
      creatorClientInfo: new Uint8Array(randomBytes(100)),
      creatorQueue: creator.queue,
      encryptedUserProfileKey: new Uint8Array(randomBytes(40)),
    };
    const signed = await h.sign(delivery.CreateGroupTbs, tbs, creator.signingKey);
    await call((d) => h.client.createGroup({ signed, groupStateEarKey: g.earKey }, d));
    g.members.push(creator);
    return g;
  }

  /** Sends a GroupOperation signed by `by`. */
  async operation(
    by: Member,
    commit: Uint8Array,
    groupInfo: Uint8Array,
    addedClients?: delivery.AddedClientsInfo,
  ): Promise<delivery.GroupOperationResponse> {
    const tbs: delivery.GroupOperationTbs = {
      header: this.h.header(rpcLabel(Service.groupOperation), { $case: "leafIndex", value: by.leaf }),
      groupId: this.groupId,
      commit,
      groupInfo,
      addedClients,
    };
    const signed = await this.h.sign(delivery.GroupOperationTbs, tbs, by.signingKey);
    // A commit that removes someone rotates the EAR key (how members derive it is theirs to agree
    // on; the DS only stores the state under it). `by.mls()` is the state the commit applies to.
    const next = commitRemovesMembers(by.mls(), commit) ? new Uint8Array(randomBytes(32)) : undefined;
    const res = await call<delivery.GroupOperationResponse>((d) =>
      this.h.client.groupOperation({ signed, groupStateEarKey: this.earKey, newGroupStateEarKey: next }, d),
    );
    if (next !== undefined) this.earKey = next;
    return res;
  }

  /** `by` adds clients with one commit; the joiners fetch their tree with WelcomeInfo and join. */
  async add(by: Member, joiners: Member[]): Promise<delivery.GroupOperationResponse> {
    const { res, welcome } = await this.addWithoutJoining(by, joiners);
    for (const j of joiners) await this.join(j, welcome, res.epoch);
    return res;
  }

  /**
   * `by` adds clients with one commit and every member processes it; the joiners hold the
   * Welcome but have not joined yet (late joiners call `join` later).
   */
  async addWithoutJoining(
    by: Member,
    joiners: Member[],
  ): Promise<{ res: delivery.GroupOperationResponse; welcome: Uint8Array }> {
    const aad = delivery.CommitAad.encode({
      addedClientInfos: joiners.map(() => new Uint8Array(randomBytes(120))),
      senderClientInfo: new Uint8Array(),
    }).finish();
    const out = await addMembers(
      by.mls(),
      this.h.cs,
      joiners.map((j) => j.keyPackage),
      { aad },
    );
    if (out.welcome === undefined) throw new Error("no welcome");
    const res = await this.operation(by, out.commit, out.groupInfo, {
      welcome: out.welcome,
      encryptedWelcomeAttributionInfos: joiners.map(() => new Uint8Array(randomBytes(64))),
    });
    await this.processByOthers(by, out.commit);
    by.state = out.newState;
    return { res, welcome: out.welcome };
  }

  /** A joiner fetches the tree of the epoch it was added in (WelcomeInfo) and joins from its Welcome. */
  async join(joiner: Member, welcome: Uint8Array, epoch: bigint): Promise<delivery.WelcomeInfoResponse> {
    const info = await this.welcomeInfo(joiner, epoch);
    const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
    joiner.state = await joinFromWelcome(
      welcome,
      joiner.keyPackage,
      joiner.privateKeyPackage,
      this.h.cs,
      tree,
    );
    this.members.push(joiner);
    return info;
  }

  async welcomeInfo(joiner: Member, epoch: bigint): Promise<delivery.WelcomeInfoResponse> {
    const ref = await makeKeyPackageRef(joiner.keyPackage, this.h.cs.hash);
    const tbs: delivery.WelcomeInfoTbs = {
      header: this.h.header(rpcLabel(Service.welcomeInfo), { $case: "keyPackageRef", value: ref }),
      groupId: this.groupId,
      epoch,
    };
    const signed = await this.h.sign(delivery.WelcomeInfoTbs, tbs, joiner.signingKey);
    return call((d) => this.h.client.welcomeInfo({ signed, groupStateEarKey: this.earKey }, d));
  }

  /** Every member except `by` processes a commit (as it would from its queue). */
  async processByOthers(by: Member | undefined, commit: Uint8Array): Promise<void> {
    for (const m of [...this.members]) {
      if (m === by) continue;
      const res = await processIncoming(m.mls(), this.h.cs, commit);
      if (res.kind === "handshake" && res.removedFromGroup) {
        m.state = undefined;
        this.members.splice(this.members.indexOf(m), 1);
      } else m.state = res.newState;
    }
  }

  /** ExternalCommitInfo as `by` asks for it (the current members, tree and GroupInfo). */
  async externalCommitInfo(by: Member): Promise<delivery.ExternalCommitInfoResponse> {
    const tbs: delivery.ExternalCommitInfoTbs = {
      header: this.h.header(rpcLabel(Service.externalCommitInfo), { $case: "leafIndex", value: by.leaf }),
      groupId: this.groupId,
    };
    const signed = await this.h.sign(delivery.ExternalCommitInfoTbs, tbs, by.signingKey);
    return call((d) => this.h.client.externalCommitInfo({ signed, groupStateEarKey: this.earKey }, d));
  }

  /** A SendMessage request of `by`, signed, presenting `earKey` (default the group's). */
  async sendRequest(
    by: Member,
    message: Uint8Array,
    earKey = this.earKey,
  ): Promise<delivery.SendMessageRequest> {
    const tbs: delivery.SendMessageTbs = {
      header: this.h.header(rpcLabel(Service.sendMessage), { $case: "leafIndex", value: by.leaf }),
      groupId: this.groupId,
      message,
      suppressNotifications: false,
    };
    return {
      signed: await this.h.sign(delivery.SendMessageTbs, tbs, by.signingKey),
      groupStateEarKey: earKey,
    };
  }

  async send(by: Member, message: Uint8Array): Promise<delivery.SendMessageResponse> {
    const request = await this.sendRequest(by, message);
    return call((d) => this.h.client.sendMessage(request, d));
  }
}
