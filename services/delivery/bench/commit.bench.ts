// DS commit cost (issue #16, P2): the DS's whole handling of a GroupOperation (signature and
// request-id claim, locked state read, decrypt, decode, validate, apply, encode, encrypt, write,
// outbox — the handler called in process, no gRPC) next to the time a member takes to process the
// same commit, and validation alone (PublicGroup stageCommit + GroupInfo check), at group sizes
// 2, 16, 128 and 1024. The measured commit is a full-path self-update of the group's creator.
// "DS whole" runs with the group's decoded state in the DS's state cache (as after the group's
// previous request: the steady state), "cold" without it (first request after DS_STATE_CACHE_IDLE,
// or on another replica). "send" is the DS's whole handling of one SendMessage (cached state).
// Run: npm run bench -- commit   (or node --conditions=source --import tsx
// services/delivery/bench/commit.bench.ts [sizes…]); needs the Postgres and NATS of
// DATABASE_URL / NATS_URL (default the local ones). Not a test: it asserts nothing.
import { readFileSync } from "node:fs";
import { AeadLabel, decryptAtRest, encryptAtRest } from "@phoenix/crypto";
import {
  type CommitOutput,
  encryptMessage,
  PublicGroup,
  parseGroupInfo,
  parsePublicMessage,
  processIncoming,
  updateOwnLeaf,
} from "@phoenix/mls";
import { delivery, rpcLabel } from "@phoenix/proto";
import { eq } from "drizzle-orm";
import { groupOperation } from "../src/api/group-operation.js";
import { readGroupState } from "../src/api/pipeline.js";
import { sendMessage } from "../src/api/send-message.js";
import { phoenixCredentialValidator } from "../src/domain/credentials.js";
import { DsGroup } from "../src/domain/group.js";
import { decodeGroupState, encodeGroupState } from "../src/domain/group-state.js";
import { groups } from "../src/store/schema.js";
import { Harness, type Member, Service, TestGroup } from "../test/support/harness.js";

process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
process.env.NATS_URL ??= "nats://127.0.0.1:4222";

const QUICK = process.env.PHOENIX_BENCH_QUICK === "1";
/** Members added per add commit while building a group (keeps each commit within the DS limits). */
const ADD_CHUNK = 200;

function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

/** Median wall time in milliseconds of `runs` calls of `f` (each after its unmeasured `prepare`). */
async function medianMs(
  runs: number,
  f: () => Promise<unknown>,
  prepare: () => Promise<void> = async () => undefined,
): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    await prepare();
    const t0 = performance.now();
    await f();
    // The first run warms up.
    if (i > 0) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

/** A group of `size`: the creator (admin), one member that joined (the observer), the rest added. */
async function buildGroup(
  h: Harness,
  size: number,
): Promise<{ g: TestGroup; creator: Member; observer: Member }> {
  const creator = await h.user("creator").client();
  const g = await TestGroup.create(h, creator);
  const observer = await h.user("observer").client();
  const rest: Member[] = [];
  for (let i = 0; i < size - 2; i++) rest.push(await h.user(`m${i}`).client());
  const first = await g.addWithoutJoining(creator, [observer, ...rest.slice(0, ADD_CHUNK - 1)]);
  await g.join(observer, first.welcome, first.res.epoch);
  for (let i = ADD_CHUNK - 1; i < rest.length; i += ADD_CHUNK)
    await g.addWithoutJoining(creator, rest.slice(i, i + ADD_CHUNK));
  // A full-path update, so the tree has parent nodes as in a group that lived a while.
  const update = await updateOwnLeaf(creator.mls(), h.cs);
  await g.operation(creator, update.commit, update.groupInfo);
  await g.processByOthers(creator, update.commit);
  creator.state = update.newState;
  return { g, creator, observer };
}

async function signedOperation(
  h: Harness,
  g: TestGroup,
  by: Member,
  out: CommitOutput,
): Promise<delivery.GroupOperationRequest> {
  const tbs: delivery.GroupOperationTbs = {
    header: h.header(rpcLabel(Service.groupOperation), { $case: "leafIndex", value: by.leaf }),
    groupId: g.groupId,
    commit: out.commit,
    groupInfo: out.groupInfo,
    addedClients: undefined,
  };
  return {
    signed: await h.sign(delivery.GroupOperationTbs, tbs, by.signingKey),
    groupStateEarKey: g.earKey,
    newGroupStateEarKey: undefined,
  };
}

async function signedMessage(h: Harness, g: TestGroup, by: Member): Promise<delivery.SendMessageRequest> {
  const sent = await encryptMessage(by.mls(), h.cs, new Uint8Array(1024));
  by.state = sent.newState;
  return g.sendRequest(by, sent.message);
}

const argSizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n >= 2);
const sizes = QUICK ? [2, 4] : argSizes.length > 0 ? argSizes : [2, 16, 128, 1024];
const rows: string[][] = [];
// Warnings of the DS (its outbox relay among them) reach stderr.
// The outbox relay stays off: publishing fan-outs is its own asynchronous work, not the DS's
// handling of a request, and under load its big fan-outs (one per commit, to every member)
// would compete with the measured runs.
const h = await Harness.start({ env: { LOG_LEVEL: "warn", DS_RELAY_START_DELAY: "24h" } });
try {
  const service = h.running?.service;
  if (service === undefined) throw new Error("the harness runs no DS");
  const ctx = service.ctx;
  for (const size of sizes) {
    const t0 = performance.now();
    const { g, creator, observer } = await buildGroup(h, size);
    const setupS = (performance.now() - t0) / 1000;
    const uuid = g.groupId.uuid;
    const [row] = await h.db.db.select().from(groups).where(eq(groups.groupId, uuid));
    if (row === undefined) throw new Error("the group has no row");
    const out = await updateOwnLeaf(creator.mls(), h.cs);
    const runs = QUICK ? 2 : size >= 1024 ? 5 : 9;
    const load = loadavg();

    // The DS's whole handling; the stored state (and its tag) is put back before each run (same
    // epoch), then either read once by the DS (cached, as after any earlier request) or dropped
    // from its cache (cold).
    let request: delivery.GroupOperationRequest | undefined;
    const restore = async (cached: boolean) => {
      await h.db.db
        .update(groups)
        .set({
          state: row.state,
          stateTag: row.stateTag,
          queueReports: row.queueReports,
          lastActiveMonth: row.lastActiveMonth,
        })
        .where(eq(groups.groupId, uuid));
      ctx.stateCache.delete(uuid);
      if (cached) await readGroupState(ctx, uuid, g.earKey);
      request = await signedOperation(h, g, creator, out);
    };
    const operate = () => groupOperation(ctx, request as delivery.GroupOperationRequest);
    const dsMs = await medianMs(runs, operate, () => restore(true));
    const coldMs = await medianMs(runs, operate, () => restore(false));
    await restore(true);
    let message: delivery.SendMessageRequest | undefined;
    const sendMs = await medianMs(
      runs,
      () => sendMessage(ctx, message as delivery.SendMessageRequest),
      async () => {
        message = await signedMessage(h, g, observer);
      },
    );
    // What the DS's handling starts from: the state decrypted and decoded.
    const decrypt = () => decryptAtRest(g.earKey, AeadLabel.GroupState, row.state, { aad: row.groupId });
    const decryptMs = await medianMs(runs, async () => decrypt());
    const plaintext = decrypt();
    const opened = DsGroup.open(decodeGroupState(plaintext), ctx);
    const encodeMs = await medianMs(runs, async () =>
      encryptAtRest(g.earKey, AeadLabel.GroupState, encodeGroupState(opened.toState()), {
        aad: uuid,
        buckets: ctx.paddingBuckets,
      }),
    );
    const options = {
      cipherSuite: h.cs,
      validateCredential: phoenixCredentialValidator(Date.now),
      now: Date.now,
    };
    const decodeMs = await medianMs(runs, async () =>
      PublicGroup.decode(decodeGroupState(plaintext).publicGroup, options),
    );
    const validator = PublicGroup.decode(decodeGroupState(plaintext).publicGroup, options);
    const validateMs = await medianMs(runs, async () => {
      const staged = await validator.stageCommit(parsePublicMessage(out.commit));
      await validator.verifyGroupInfo(staged, parseGroupInfo(out.groupInfo));
    });
    const memberMs = await medianMs(runs, () => processIncoming(observer.mls(), h.cs, out.commit));
    rows.push([
      String(size),
      `${(plaintext.byteLength / 1024).toFixed(0)} / ${(row.state.byteLength / 1024).toFixed(0)}`,
      dsMs.toFixed(1),
      coldMs.toFixed(1),
      decryptMs.toFixed(1),
      decodeMs.toFixed(1),
      validateMs.toFixed(1),
      encodeMs.toFixed(1),
      memberMs.toFixed(1),
      (dsMs / memberMs).toFixed(2),
      (validateMs / memberMs).toFixed(2),
      (coldMs / memberMs).toFixed(2),
      sendMs.toFixed(1),
      load,
    ]);
    console.error(`N=${size}: setup ${setupS.toFixed(1)} s, ${runs} runs each`);
  }
  printTable(rows);
} finally {
  await h.stop().catch((error: unknown) => {
    console.error(`stopping the DS harness: ${String(error)}`);
    process.exitCode = 1;
  });
}

function printTable(rows: string[][]): void {
  const header = [
    "members",
    "state KiB (plain / padded)",
    "DS whole ms",
    "cold ms",
    "decrypt ms",
    "decode ms",
    "validate ms",
    "encode+encrypt ms",
    "member ms",
    "DS/member",
    "validate/member",
    "cold/member",
    "send ms",
    "loadavg",
  ];
  const cells = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  for (const r of cells) console.log(r.map((c, i) => c.padStart(widths[i] ?? 0)).join("  "));
}

// The series as JSON for scripts/plot-perf.py: docs/perf/data/commit.json (PHOENIX_BENCH_OUT:
// another directory; a quick run writes to a temp one). The cells are the table's, as numbers.
{
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const { cpus, tmpdir, totalmem } = await import("node:os");
  const { join } = await import("node:path");
  const { fileURLToPath } = await import("node:url");
  const dir =
    process.env.PHOENIX_BENCH_OUT ??
    (QUICK
      ? join(tmpdir(), "phoenix-bench")
      : fileURLToPath(new URL("../../../docs/perf/data", import.meta.url)));
  // In the table's column order (dsMs: the state cached, as in steady use; coldMs: not cached).
  const keys = [
    "members",
    "stateKiB",
    "dsMs",
    "coldMs",
    "decryptMs",
    "decodeMs",
    "validateMs",
    "encodeEncryptMs",
    "memberMs",
    "dsPerMember",
    "validatePerMember",
    "coldPerMember",
    "sendMs",
  ];
  const series = rows.map((r) => {
    const point: Record<string, unknown> = Object.fromEntries(keys.map((k, i) => [k, Number(r[i])]));
    const [plain, stored] = (r[1] ?? "").split(" / ").map(Number);
    point.stateKiB = { plain, stored };
    point.load = (r[keys.length] ?? "").split(" ").map(Number);
    return point;
  });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "commit.json");
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
  };
  const what =
    "DS whole handling of a full-path self-update commit vs a member's processing of it, medians in ms";
  writeFileSync(
    file,
    `${JSON.stringify({ bench: "services/delivery/bench/commit.bench.ts", what, quick: QUICK, date: new Date().toISOString(), machine, series }, null, 2)}\n`,
  );
  console.error(`wrote ${file}`);
}
