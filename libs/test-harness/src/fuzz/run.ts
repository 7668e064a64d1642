// The RPC fuzzer: every RPC of every service (the catalog of the contracts) over gRPC, and every
// REST route of the edge gateway, gets malformed and mutated requests drawn from one seeded
// PRNG. Inputs run in rounds; around each round the target's state (rows per table, stream
// messages) is read while nothing legitimate runs, so any change is a rejected input's doing.
import { status } from "@grpc/grpc-js";
import { auth, delivery, federation, queue, type RpcInfo, rpcCatalog } from "@phoenix/proto";
import { Prng } from "../random-prng.js";
import { type Corpus, federationRequest, legitimateTraffic } from "./corpus.js";
import { mutate } from "./mutate.js";
import { quiescentCounts, residentMemory, serviceOfKey, stateDiff } from "./observe.js";
import { judgeGrpc, type Outcome, RawGrpc, sendRest, sendWebSocket } from "./send.js";
import { type FuzzTarget, TARGET_MAX_MESSAGE_BYTES } from "./target.js";

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  seed: number;
  /** Inputs per fuzz target (each gRPC RPC and each REST route is one target). */
  inputsPerTarget: number;
  /** Inputs per round (state is compared around each round). Default 1500. */
  roundSize?: number;
  /** Inputs in flight at once. Default 6. */
  concurrency?: number;
  /** Only the targets whose name matches (e.g. `/DeliveryService|\/v1\/ds\//`). */
  only?: RegExp;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** One input whose answer broke the contract. */
export interface FuzzFinding {
  target: string;
  mutation: string;
  code: number;
  message: string;
  problem: string;
  /** The first 256 bytes of the input, hex (the seed replays it exactly). */
  inputHex: string;
}

/** What a fuzz run did and found. */
export interface FuzzReport {
  seed: number;
  durationMs: number;
  /** Inputs sent per target (`grpc <path>`, `stream <path>`, `rest <VERB> <route>`). */
  inputs: Record<string, number>;
  /** Answers per target: code (gRPC) or HTTP status → count. */
  answers: Record<string, Record<string, number>>;
  /** Inputs answered OK per target (valid replays of reads, listens, fresh federation requests). */
  accepted: Record<string, number>;
  findings: FuzzFinding[];
  /**
   * State changes of a service around a round in which no input to that service was accepted:
   * a rejected input changed state (a finding).
   */
  stateChanges: { round: number; changed: string[]; accepted: string[] }[];
  /** State changes explained by inputs the service accepted in that round (reported, not findings). */
  acceptedChanges: { round: number; changed: string[]; accepted: string[] }[];
  /** Processes that exited or logged a fatal error, with their output tail. */
  crashes: string[];
  /** Inputs whose answer took longer than 5 s (the first 50): a slow path or a stuck service. */
  slow: { target: string; mutation: string; ms: number; code: number; bytes: number }[];
  /** Error and fatal log lines of the services during the run (the first 40). */
  errorLogs: string[];
  /** RSS in bytes per service before the first and after the last round, and the peak. */
  memory: { before: Record<string, number>; after: Record<string, number>; peak: Record<string, number> };
  /** The RPCs of the contracts, per service. */
  rpcs: Record<string, string[]>;
  /** Valid requests recorded from the legitimate traffic, per RPC path (the mutation seeds). */
  corpus: Record<string, number>;
}

interface Input {
  target: string;
  mutation: string;
  bytes: Uint8Array;
  send(): Promise<Outcome>;
}

interface TargetSpec {
  name: string;
  draw(rng: Prng): Promise<Omit<Input, "target">>;
}

const MESSAGE_MODULES: Record<string, Record<string, unknown>> = {
  "phoenix.auth.v1": auth,
  "phoenix.delivery.v1": delivery,
  "phoenix.queue.v1": queue,
  "phoenix.federation.v1": federation,
};

interface JsonCodec {
  decode(bytes: Uint8Array): unknown;
  toJSON(message: unknown): unknown;
}

function codecOf(fullName: string): JsonCodec | undefined {
  const dot = fullName.lastIndexOf(".");
  return MESSAGE_MODULES[fullName.slice(0, dot)]?.[fullName.slice(dot + 1)] as JsonCodec | undefined;
}

function addressOf(target: FuzzTarget, rpc: RpcInfo): string {
  if (rpc.service.endsWith("FederationProxyService")) return target.addresses.federationInternal;
  if (rpc.service.startsWith("phoenix.federation.")) return target.addresses.federation;
  if (rpc.service === "phoenix.admin.v1.FederationAdminService") return target.addresses.admin.federation;
  if (rpc.service === "phoenix.admin.v1.QueueAdminService") return target.addresses.admin.queue;
  if (rpc.service.startsWith("phoenix.admin.")) return target.addresses.admin.auth;
  if (rpc.service.startsWith("phoenix.auth.")) return target.addresses.auth;
  if (rpc.service.startsWith("phoenix.delivery.")) return target.addresses.delivery;
  return target.addresses.queue;
}

const DEADLINE_MS = 15_000;

function grpcTarget(fuzz: FuzzTarget, rpc: RpcInfo, corpus: Corpus, raw: RawGrpc): TargetSpec {
  const address = addressOf(fuzz, rpc);
  const streaming = rpc.clientStreaming || rpc.serverStreaming;
  const samples = corpus.get(rpc.path) ?? [];
  const others = [...corpus.entries()].filter(([p]) => p !== rpc.path);
  const forwards = rpc.method === "Forward" || rpc.method === "Proxy";
  const federated = rpc.service.startsWith("phoenix.federation.");
  return {
    name: `${streaming ? "stream" : "grpc"} ${rpc.path}`,
    async draw(rng) {
      let mutation: string;
      let bytes: Uint8Array;
      const r = rng.int(0, 99);
      const fresh = federated ? await federationRequest(rng, fuzz, rpc.path, corpus) : undefined;
      if (fresh !== undefined && r < 35) {
        mutation = "fresh-signed";
        bytes = fresh;
      } else if (samples.length > 0 && r < 8) {
        mutation = "replay";
        bytes = rng.pick(samples);
      } else if (others.length > 0 && r < 16) {
        // A valid request of another RPC: its signature carries the other RPC's label.
        mutation = "wrong-rpc";
        bytes = rng.pick(rng.pick(others)[1]);
      } else {
        const base = fresh ?? (samples.length > 0 ? rng.pick(samples) : new Uint8Array());
        const m = mutate(rng, base, TARGET_MAX_MESSAGE_BYTES + 1024 * 1024);
        mutation = m.kind;
        bytes = m.bytes;
      }
      const send = streaming
        ? () => raw.stream(address, rpc.path, bytes, 1500).then((o) => judgeGrpc(o, false))
        : () => raw.unary(address, rpc.path, bytes, DEADLINE_MS).then((o) => judgeGrpc(o, forwards));
      return { mutation, bytes, send };
    },
  };
}

const CONTENT_TYPES = [
  "text/plain",
  "multipart/form-data; boundary=x",
  "application/xml",
  "application/grpc",
  "*/*",
  "application/json; charset=utf-16",
];

function jsonMutation(rng: Prng, sample: unknown): { kind: string; text: string } {
  const base = (
    sample && typeof sample === "object" ? { ...(sample as Record<string, unknown>) } : {}
  ) as Record<string, unknown>;
  const keys = Object.keys(base);
  const key =
    keys.length > 0 && rng.chance(0.7)
      ? rng.pick(keys)
      : rng.pick(["signed", "tbs", "groupId", "x", "__proto__"]);
  const kind = rng.pick([
    "json-deep-object",
    "json-deep-array",
    "json-huge-array",
    "json-wrong-type",
    "json-huge-string",
    "json-number-extreme",
    "json-invalid",
    "json-proto-key",
    "json-valid",
  ] as const);
  switch (kind) {
    case "json-deep-object": {
      const depth = rng.pick([100, 5000, 50_000]);
      return { kind, text: `${`{"${key}":`.repeat(depth)}1${"}".repeat(depth)}` };
    }
    case "json-deep-array": {
      const depth = rng.pick([100, 5000, 100_000]);
      return { kind, text: `{"${key}":${"[".repeat(depth)}${"]".repeat(depth)}}` };
    }
    case "json-huge-array":
      return {
        kind,
        text: JSON.stringify({
          ...base,
          [key]: Array.from({ length: rng.pick([1000, 100_000]) }, () => "AAAA"),
        }),
      };
    case "json-wrong-type":
      return {
        kind,
        text: JSON.stringify({
          ...base,
          [key]: rng.pick<unknown>([true, 12, "str", null, [], {}, [1, "a"], { a: { b: 1 } }]),
        }),
      };
    case "json-huge-string":
      return { kind, text: JSON.stringify({ ...base, [key]: "A".repeat(rng.pick([1000, 600_000])) }) };
    case "json-number-extreme":
      return {
        kind,
        text: `{"${key}":${rng.pick(["1e999", "-1e999", "18446744073709551616", "-0", "0.5", "NaN"])}}`,
      };
    case "json-invalid": {
      const text = JSON.stringify(base);
      return {
        kind,
        text: text.slice(0, rng.int(0, Math.max(0, text.length - 1))) + rng.pick(["", "\u0000", "'", "\\"]),
      };
    }
    case "json-proto-key":
      return { kind, text: `{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"${key}":{}}` };
    case "json-valid":
      return { kind, text: JSON.stringify(base) };
  }
}

function restTarget(fuzz: FuzzTarget, rpc: RpcInfo, corpus: Corpus): TargetSpec | undefined {
  const pattern = rpc.http?.pattern;
  if (!pattern) return undefined;
  const verb = (pattern.$case === "custom" ? pattern.value.kind : pattern.$case).toUpperCase();
  const route = pattern.$case === "custom" ? pattern.value.path : pattern.value;
  const samples = corpus.get(rpc.path) ?? [];
  const codec = codecOf(rpc.requestType);
  const url = `${fuzz.url}${route}`;
  return {
    name: `rest ${verb} ${route}`,
    async draw(rng) {
      const sample = samples.length > 0 ? rng.pick(samples) : new Uint8Array();
      const r = rng.int(0, 99);
      let mutation: string;
      let method = verb;
      let headers: Record<string, string> = {
        accept: rng.chance(0.5) ? "application/json" : "application/x-protobuf",
      };
      let body: Uint8Array | string | undefined;
      let target = url;
      if (verb === "GET") {
        mutation = rng.pick(["query-garbage", "query-huge", "body-on-get"]);
        if (mutation === "query-garbage")
          target = `${url}?${rng.pick(["a=%ZZ", "x=1&x=2", "=", "%00=%00", "tbs=AAAA"])}`;
        else if (mutation === "query-huge") target = `${url}?x=${"A".repeat(rng.pick([1000, 60_000]))}`;
        else {
          method = "POST";
          body = mutate(rng, sample, 4096).bytes;
        }
      } else if (r < 45) {
        const m =
          r < 5 && samples.length > 0
            ? { kind: "replay" as const, bytes: sample }
            : mutate(rng, sample, 1024 * 1024 + 4096);
        mutation = `proto-${m.kind}`;
        body = m.bytes;
        headers["content-type"] = rng.pick([
          "application/x-protobuf",
          "application/protobuf",
          "application/vnd.google.protobuf",
        ]);
      } else if (r < 75) {
        let json: unknown = {};
        try {
          if (codec && sample.length > 0) json = codec.toJSON(codec.decode(sample));
        } catch {
          json = {};
        }
        const m = jsonMutation(rng, json);
        mutation = m.kind;
        body = m.text;
        if (rng.chance(0.9)) headers["content-type"] = "application/json";
      } else if (r < 87) {
        mutation = "wrong-content-type";
        headers["content-type"] = rng.pick(CONTENT_TYPES);
        body = mutate(rng, sample, 4096).bytes;
      } else if (r < 93) {
        mutation = "wrong-method";
        method = rng.pick(["PUT", "DELETE", "PATCH", "GET"]);
        body = method === "GET" ? undefined : sample;
      } else {
        mutation = "oversized-body";
        headers = { ...headers, "content-type": "application/x-protobuf" };
        body = new Uint8Array(1024 * 1024 + rng.int(1, 4096));
      }
      const bytes = typeof body === "string" ? new TextEncoder().encode(body) : (body ?? new Uint8Array());
      return {
        mutation,
        bytes,
        send: () => sendRest(target, { method, headers, body }, DEADLINE_MS),
      };
    },
  };
}

/** The edge gateway's WebSocket route of a streaming RPC: `/v1/<as|qs>/ws/<method-in-kebab-case>`. */
function wsTarget(fuzz: FuzzTarget, rpc: RpcInfo, corpus: Corpus): TargetSpec | undefined {
  if (!(rpc.clientStreaming || rpc.serverStreaming)) return undefined;
  const area = rpc.service.startsWith("phoenix.auth.")
    ? "as"
    : rpc.service.startsWith("phoenix.queue.")
      ? "qs"
      : undefined;
  if (!area) return undefined;
  const route = `/v1/${area}/ws/${rpc.method.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase()}`;
  const samples = corpus.get(rpc.path) ?? [];
  const codec = codecOf(rpc.requestType);
  const base = fuzz.url.replace(/^http/, "ws");
  return {
    name: `ws ${route}`,
    async draw(rng) {
      const sample = samples.length > 0 ? rng.pick(samples) : new Uint8Array();
      const r = rng.int(0, 99);
      let mutation: string;
      let frame: Uint8Array | string;
      let encoding = "proto";
      if (r < 55) {
        const m =
          r < 5 && samples.length > 0
            ? { kind: "replay", bytes: sample }
            : mutate(rng, sample, 1024 * 1024 + 4096);
        mutation = `proto-${m.kind}`;
        frame = m.bytes;
      } else if (r < 85) {
        encoding = "json";
        let json: unknown = {};
        try {
          if (codec && sample.length > 0) json = codec.toJSON(codec.decode(sample));
        } catch {
          json = {};
        }
        const m = jsonMutation(rng, json);
        mutation = m.kind;
        frame = m.text;
      } else if (r < 93) {
        mutation = "wrong-frame-kind";
        encoding = rng.pick(["proto", "json"]);
        frame = encoding === "proto" ? "{}" : mutate(rng, sample, 4096).bytes;
      } else {
        mutation = "bad-encoding";
        encoding = rng.pick(["xml", "", "PROTO", "json&encoding=proto"]);
        frame = sample;
      }
      const bytes = typeof frame === "string" ? new TextEncoder().encode(frame) : frame;
      return {
        mutation,
        bytes,
        send: () => sendWebSocket(`${base}${route}?encoding=${encoding}`, frame, 1500),
      };
    },
  };
}

function serviceOf(rpc: RpcInfo): string {
  return rpc.service.split(".").pop() ?? rpc.service;
}

/** The fuzz targets for `fuzz`: each gRPC RPC of the catalog, then each REST route. */
export function fuzzTargets(fuzz: FuzzTarget, corpus: Corpus, raw: RawGrpc): TargetSpec[] {
  const catalog = rpcCatalog();
  const grpc = catalog.map((rpc) => grpcTarget(fuzz, rpc, corpus, raw));
  const rest = catalog
    .map((rpc) => restTarget(fuzz, rpc, corpus))
    .filter((t): t is TargetSpec => t !== undefined);
  const ws = catalog
    .map((rpc) => wsTarget(fuzz, rpc, corpus))
    .filter((t): t is TargetSpec => t !== undefined);
  return [...grpc, ...rest, ...ws];
}

async function pool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function crashesOf(fuzz: FuzzTarget): string[] {
  const out: string[] = [];
  for (const p of fuzz.processes) {
    if (!p.running) out.push(`${p.name} exited: ${p.output.slice(-3000)}`);
    const fatal = p.lines.filter((l) => l.level === "fatal");
    if (fatal.length > 0) out.push(`${p.name} logged fatal: ${JSON.stringify(fatal.slice(0, 3))}`);
  }
  return out;
}

function add(map: Record<string, number>, key: string, n = 1): void {
  map[key] = (map[key] ?? 0) + n;
}

/**
 * Runs the legitimate traffic on `fuzz`, then `inputsPerTarget` fuzz inputs for every target in
 * rounds, and reports. Throws only when the target cannot be used at all.
 */
export async function runFuzz(fuzz: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const { corpus, users } = await legitimateTraffic(fuzz);
  log(
    `corpus: ${[...corpus.values()].reduce((n, l) => n + l.length, 0)} valid requests of ${corpus.size} RPCs`,
  );
  const raw = new RawGrpc();
  const rng = new Prng(options.seed);
  const targets = fuzzTargets(fuzz, corpus, raw).filter((t) => !options.only || options.only.test(t.name));
  const report: FuzzReport = {
    seed: options.seed,
    durationMs: 0,
    inputs: {},
    answers: {},
    accepted: {},
    findings: [],
    stateChanges: [],
    acceptedChanges: [],
    crashes: [],
    errorLogs: [],
    slow: [],
    memory: { before: {}, after: {}, peak: {} },
    rpcs: {},
    corpus: Object.fromEntries([...corpus].map(([path, list]) => [path, list.length])),
  };
  for (const rpc of rpcCatalog()) {
    const list = report.rpcs[serviceOf(rpc)] ?? [];
    list.push(rpc.method);
    report.rpcs[serviceOf(rpc)] = list;
  }
  try {
    report.memory.before = await residentMemory(fuzz);
    const total = targets.length * options.inputsPerTarget;
    const roundSize = options.roundSize ?? 1500;
    let sent = 0;
    let round = 0;
    // Draw order is fixed by the seed: target by target in turn, so every round mixes all targets.
    let cursor = 0;
    while (sent < total) {
      round++;
      const count = Math.min(roundSize, total - sent);
      const inputs: Input[] = [];
      for (let i = 0; i < count; i++) {
        const spec = targets[cursor % targets.length] as TargetSpec;
        cursor++;
        inputs.push({ target: spec.name, ...(await spec.draw(rng)) });
      }
      const before = await quiescentCounts(fuzz);
      const accepted: string[] = [];
      const acceptedTargets = new Set<string>();
      await pool(inputs, options.concurrency ?? 6, async (input) => {
        const sentAt = Date.now();
        const outcome = await input.send();
        const ms = Date.now() - sentAt;
        if (ms > 5000 && report.slow.length < 50)
          report.slow.push({
            target: input.target,
            mutation: input.mutation,
            ms,
            code: outcome.code,
            bytes: input.bytes.length,
          });
        add(report.inputs, input.target);
        const answers = report.answers[input.target] ?? {};
        add(answers, String(outcome.code));
        report.answers[input.target] = answers;
        if (outcome.code === status.OK || outcome.code === 200 || outcome.code === 1000) {
          add(report.accepted, input.target);
          accepted.push(`${input.target} (${input.mutation})`);
          acceptedTargets.add(input.target);
        }
        if (outcome.problem) {
          report.findings.push({
            target: input.target,
            mutation: input.mutation,
            code: outcome.code,
            message: outcome.message.slice(0, 300),
            problem: outcome.problem,
            inputHex: Buffer.from(input.bytes.subarray(0, 256)).toString("hex"),
          });
        }
      });
      sent += count;
      const after = await quiescentCounts(fuzz);
      const changed = stateDiff(before, after);
      const explainedBy = (c: string) =>
        [...acceptedTargets].some((t) => mayChange(t, c.slice(0, c.indexOf(": "))));
      const unexplained = changed.filter((c) => !explainedBy(c));
      const explained = changed.filter(explainedBy);
      if (unexplained.length > 0)
        report.stateChanges.push({ round, changed: unexplained, accepted: summarize(accepted) });
      if (explained.length > 0)
        report.acceptedChanges.push({ round, changed: explained, accepted: summarize(accepted) });
      const memory = await residentMemory(fuzz);
      for (const [name, rss] of Object.entries(memory))
        report.memory.peak[name] = Math.max(report.memory.peak[name] ?? 0, rss);
      report.crashes = crashesOf(fuzz);
      log(
        `round ${round}: ${sent}/${total} inputs, ${report.findings.length} findings, ${report.stateChanges.length} state changes, rss ${Object.entries(
          memory,
        )
          .map(([n, b]) => `${n}=${Math.round(b / 1048576)}M`)
          .join(" ")}`,
      );
      if (report.crashes.length > 0) break;
    }
    report.memory.after = await residentMemory(fuzz);
  } finally {
    report.errorLogs = fuzz.processes
      .flatMap((p) =>
        p.lines
          .filter((l) => l.level === "error" || l.level === "fatal")
          .map((l) => `${p.name}: ${JSON.stringify(l).slice(0, 1500)}`),
      )
      .slice(0, 40);
    raw.close();
    await users.close();
    report.durationMs = Date.now() - started;
  }
  return report;
}

/** RPCs (gRPC method or REST route) that never change state: accepting one explains nothing. */
const READS =
  /\/(GetAsCredentials|GetQueueConfigEncryptionKey|GetVerifyingKey|GetUserProfile|CheckHandleExists|ListClients|GetUser|WelcomeInfo|ExternalCommitInfo|ConnectionGroupInfo)$|\/v1\/as\/credentials|\/v1\/qs\/keys\/|\/profiles\/get|\/handles\/check|\/clients\/list|\/users\/get|welcome-info|external-commit-info|connection-group-info/;

/**
 * The state keys an accepted input of `target` may change. Public operations that anyone may
 * call change only their own tables (reserving a group id, fetching a package consumes it,
 * enqueueing a connection offer); federation requests reach every service; any other accepted
 * input may change its own service, and the DS's also the QS and the bus (fan-outs).
 */
export function mayChange(target: string, key: string): boolean {
  if (target.includes(".federation.")) return true;
  if (READS.test(target)) return false;
  if (/RequestGroupId|groups\/reserve/.test(target)) return key.includes("group_reservations");
  if (/FetchAddPackages|add-packages\/fetch/.test(target)) return key.includes("add_packages");
  if (/GetConnectionPackages|GetHandleConnectionPackage|connection-packages\/fetch/.test(target))
    return key.includes("connection_packages");
  if (/Enqueue(Handle)?ConnectionOffer|connection-offers$/.test(target))
    return key.startsWith("auth.") && /queue/.test(key);
  const service = serviceOfKey(key);
  if (target.includes(".delivery.") || target.includes("/v1/ds/"))
    return ["delivery", "queue", "bus"].includes(service);
  if (target.includes(".queue.") || target.includes("/v1/qs/")) return ["queue", "bus"].includes(service);
  return ["auth", "bus"].includes(service);
}

function summarize(accepted: readonly string[]): string[] {
  const counts: Record<string, number> = {};
  for (const a of accepted) add(counts, a);
  return Object.entries(counts).map(([k, n]) => `${n}× ${k}`);
}
