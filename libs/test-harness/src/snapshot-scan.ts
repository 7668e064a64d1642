// The two standing privacy checks of docs/security.md applied to what the harness starts: the
// snapshot adversary (every persisted store of a deployment or federation) and the active
// observer (the working memory of the DS, QS and federation gateway processes).
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { busTopology } from "@phoenix/runtime/bus";
import { openDatabase } from "@phoenix/runtime/db";
import type { Deployment } from "./deployment.js";
import type { Federation } from "./federation.js";
import {
  type Component,
  clientStoresIn,
  filesUnder,
  isCatalogFile,
  jetStreamMessages,
  logBlob,
  MEMORY_POLICY,
  type MemoryRead,
  MIN_MEMORY_TEXT_BYTES,
  NeedleSet,
  natsStoreDir,
  natsStreamFiles,
  needlesFromClientStore,
  pgDump,
  postgresRelationFiles,
  postgresTables,
  processMemory,
  SecretsScan,
  unpaddedGroupStates,
} from "./secrets-scan.js";
import type { LogLine } from "./service-process.js";

/** The needles of every client store (`*.sqlite`) in the directories given. */
export async function needlesFromClientDirs(dirs: readonly string[]): Promise<NeedleSet> {
  const needles = new NeedleSet();
  for (const dir of dirs) {
    for (const path of await clientStoresIn(dir)) {
      const who =
        path
          .split("/")
          .pop()
          ?.replace(/\.sqlite$/, "") ?? path;
      needlesFromClientStore(needles, path, who);
    }
  }
  return needles;
}

/** What one snapshot scan read and found. */
export interface SnapshotScanResult {
  scan: SecretsScan;
  /** The stores read, e.g. `postgres e2eab_auth`, `nats-store PHOENIX_FANOUT_…`. */
  stores: string[];
  /** DS group-state sizes outside the padding buckets, per DS database. */
  unpadded: { database: string; rows: number; unpadded: number[] }[];
}

/** One line saying what a snapshot scan read and found, for the test log. */
export function summarizeSnapshotScan(label: string, result: SnapshotScanResult, needles: NeedleSet): string {
  const r = result.scan.report;
  return (
    `snapshot scan (${label}): ${result.stores.length} stores, ${r.needles} needles (${needles.skipped.length} too short), ` +
    `${r.patterns} patterns, ${r.blobs} blobs, ${r.bytes} bytes ${JSON.stringify(r.bytesByStore)}, ` +
    `${r.allowed} allowed matches ${JSON.stringify(r.allowedByPlace)}, ${r.hits.length} hits`
  );
}

/** The Postgres side of a set of service databases, named `<prefix><service>`. */
export interface PostgresStores {
  serverUrl: string;
  databases: readonly string[];
}

/** Everything a warrant adversary could seize from a running deployment or homeserver set. */
export interface SeizableStores {
  postgres?: PostgresStores;
  /** PGlite data directories and other data dirs, scanned file by file (raw bytes). */
  dataDirs?: readonly string[];
  nats?: { url: string; streams: readonly string[] };
  /** Log lines per process / component. */
  logs?: readonly { name: string; component: Component; text: string }[];
}

/** The component a database, directory or file belongs to, from its name. */
export function componentOf(name: string): Component {
  const base = name.replace(/\/+$/, "");
  for (const [pattern, component] of [
    [/(^|[_/])auth($|[_/])/, "auth"],
    [/(^|[_/])delivery($|[_/])/, "delivery"],
    [/(^|[_/])queue($|[_/])/, "queue"],
    [/(^|[_/])federation($|[_/])/, "federation"],
    [/(^|[_/])bus($|[_/])/, "bus"],
  ] as const) {
    if (pattern.test(base)) return component;
  }
  return "other";
}

/**
 * Reads every store of `stores` — each Postgres database through SQL (bytea raw) and as a plain
 * pg_dump, each data directory file by file, the NATS streams through JetStream and their
 * store-directory files, the log lines — and scans them for `needles` under the store policy.
 */
export async function scanSeizableStores(
  stores: SeizableStores,
  needles: NeedleSet,
): Promise<SnapshotScanResult> {
  const scan = new SecretsScan(needles);
  const read: string[] = [];
  const unpadded: SnapshotScanResult["unpadded"] = [];
  if (stores.postgres) {
    const { serverUrl, databases } = stores.postgres;
    for (const database of databases) {
      const component = componentOf(database);
      await scan.addAll(postgresTables(serverUrl, database, component));
      await scan.addAll(pgDump(serverUrl, database, component));
      read.push(`postgres ${database}`, `pg_dump ${database}`);
      const files = await postgresRelationFiles(serverUrl, database, component);
      if (files !== undefined) {
        await scan.addAll(files);
        read.push(`postgres-files ${database}`);
      }
      if (component === "delivery")
        unpadded.push({ database, ...(await unpaddedGroupStates(serverUrl, database)) });
    }
  }
  for (const dir of stores.dataDirs ?? []) {
    const embedded = await embeddedStoreComponents(dir);
    await scan.addAll(
      filesUnder(
        dir,
        "data-dir",
        (path) => embedded?.(path) ?? componentOf(path.slice(dir.length)),
        isCatalogFile,
      ),
    );
    read.push(`files ${dir}`);
  }
  if (stores.nats) {
    await scan.addAll(jetStreamMessages(stores.nats.url, stores.nats.streams));
    read.push(`jetstream ${stores.nats.streams.join(",")}`);
    const storeDir = await natsStoreDir();
    if (storeDir !== undefined) {
      await scan.addAll(natsStreamFiles(storeDir, stores.nats.streams));
      read.push(`nats-store ${storeDir}`);
    }
  }
  for (const log of stores.logs ?? []) {
    scan.add(logBlob(log.component, log.name, log.text));
    read.push(`logs ${log.name}`);
  }
  return { scan, stores: read, unpadded };
}

/** The all-in-one homeserver's one embedded database (a schema per service) in a data dir. */
const EMBEDDED_STORE = join("pglite", "homeserver");

/**
 * For a data dir holding the all-in-one's embedded database: the component of each of its files.
 * A table file (with its TOAST table and indexes) belongs to the service whose schema holds it,
 * read from the catalog of a copy; the files every service writes (WAL, transaction status) are
 * `shared`. Undefined for other data dirs and for paths outside the store.
 */
async function embeddedStoreComponents(dataDir: string): Promise<((path: string) => Component) | undefined> {
  const storeDir = join(dataDir, EMBEDDED_STORE);
  if (
    !(await stat(storeDir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    return undefined;
  const copy = await mkdtemp(join(tmpdir(), "phoenix-store-copy-"));
  const byFile = new Map<string, Component>();
  try {
    await cp(storeDir, copy, { recursive: true });
    const handle = await openDatabase({ driver: "pglite", dataDir: copy });
    try {
      const result = await handle.db.execute(RELATION_SCHEMAS);
      for (const row of (result as unknown as { rows: { file: string; schema: string }[] }).rows) {
        byFile.set(row.file, componentOf(row.schema));
      }
    } finally {
      await handle.close();
    }
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
  return (path) => {
    if (!path.startsWith(storeDir)) return componentOf(path.slice(dataDir.length));
    const relation = /\/base\/\d+\/(\d+)(_[a-z]+)?(\.\d+)?$/.exec(path);
    if (relation) return byFile.get(relation[1] ?? "") ?? "other";
    return "shared";
  };
}

/** File node and owning schema of every user relation, its TOAST table and the TOAST index. */
const RELATION_SCHEMAS = `
  WITH owned AS (
    SELECT c.oid, c.relfilenode, c.reltoastrelid, n.nspname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  ), toast AS (
    SELECT t.oid, t.relfilenode, o.nspname FROM owned o JOIN pg_class t ON t.oid = o.reltoastrelid
  ), toast_index AS (
    SELECT i.relfilenode, t.nspname
    FROM toast t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid
  )
  SELECT relfilenode::text AS file, nspname AS schema FROM owned
  UNION ALL SELECT relfilenode::text, nspname FROM toast
  UNION ALL SELECT relfilenode::text, nspname FROM toast_index`;

/** The seizable stores of a harness deployment (all-in-one: its data dir; services: Postgres + NATS). */
export function deploymentStores(deployment: Deployment): SeizableStores {
  const logs = deployment.processes.map((p) => ({
    name: p.name,
    component: componentOf(p.name.replace("-gateway", "")),
    text: `${p.lines.map((l: LogLine) => JSON.stringify(l)).join("\n")}\n${p.output}`,
  }));
  const { databases, streams, dataDir } = deployment.storage;
  return {
    ...(databases.length > 0 && process.env.DATABASE_URL
      ? { postgres: { serverUrl: process.env.DATABASE_URL, databases } }
      : {}),
    ...(dataDir ? { dataDirs: [dataDir] } : {}),
    ...(streams.length > 0 && process.env.NATS_URL ? { nats: { url: process.env.NATS_URL, streams } } : {}),
    logs,
  };
}

/** What one memory check read and found. */
export interface MemoryScanResult {
  scan: SecretsScan;
  reads: (MemoryRead & { name: string })[];
}

/** The processes the active observer reads: DS, QS and federation gateway. */
export const OBSERVED_SERVICES: readonly string[] = ["delivery", "queue", "federation-gateway"];

/**
 * Copies the working memory of the observed processes, right after start, into files under
 * `dir` (one per chunk): strings a library holds anyway ("message 0" in some source text) are
 * then not blamed on the scenario. Returns the files per process name.
 */
export async function takeMemoryBaseline(
  deployment: Deployment,
  dir: string,
  options: { names?: readonly string[]; maxBytesPerProcess?: number } = {},
): Promise<Map<string, string[]>> {
  const files = new Map<string, string[]>();
  for (const name of options.names ?? OBSERVED_SERVICES) {
    const child = deployment.processes.find((p) => p.name === name);
    if (child?.pid === undefined) throw new Error(`no running ${name} process`);
    const list: string[] = [];
    await mkdir(join(dir, name), { recursive: true });
    for await (const blob of processMemory(child.pid, "other", {
      maxBytes: options.maxBytesPerProcess ?? 1024 * 1024 * 1024,
    })) {
      const path = join(dir, name, `${list.length}.bin`);
      await writeFile(path, blob.bytes);
      list.push(path);
    }
    files.set(name, list);
  }
  return files;
}

/**
 * The active observer: reads the whole working memory of the named processes of a five-service
 * deployment (default DS, QS, federation gateway), at most `maxBytesPerProcess` each, and scans
 * it under the memory policy; with a baseline ({@link takeMemoryBaseline}), matches of patterns
 * the same process held right after start are counted apart.
 */
export async function scanServiceMemory(
  deployment: Deployment,
  needles: NeedleSet,
  options: {
    names?: readonly string[];
    maxBytesPerProcess?: number;
    baseline?: ReadonlyMap<string, readonly string[]>;
  } = {},
): Promise<MemoryScanResult> {
  const names = options.names ?? OBSERVED_SERVICES;
  const scan = new SecretsScan(
    needles.without((n) => n.text && n.bytes.length < MIN_MEMORY_TEXT_BYTES),
    MEMORY_POLICY,
  );
  const reads: MemoryScanResult["reads"] = [];
  for (const name of names) {
    const component = componentOf(name.replace("-gateway", ""));
    for (const path of options.baseline?.get(name) ?? []) {
      scan.addBaseline({ store: "memory-baseline", component, location: path, bytes: await readFile(path) });
    }
  }
  for (const name of names) {
    const child = deployment.processes.find((p) => p.name === name);
    if (child?.pid === undefined || !child.running) throw new Error(`no running ${name} process`);
    const read = { name, pid: child.pid, regions: 0, bytes: 0, unreadable: 0 };
    await scan.addAll(
      processMemory(child.pid, componentOf(name.replace("-gateway", "")), {
        read,
        maxBytes: options.maxBytesPerProcess ?? 1024 * 1024 * 1024,
      }),
    );
    reads.push(read);
  }
  return { scan, reads };
}

/**
 * The seizable stores of a federation: every domain's Postgres databases, data directory, NATS
 * streams of its bus namespace, and its captured log lines (start it with `captureLogs`).
 */
export async function federationStores(federation: Federation): Promise<SeizableStores> {
  const databaseUrl = process.env.DATABASE_URL as string;
  const natsUrl = process.env.NATS_URL as string;
  const homeservers = federation.domains.map((d) => federation.homeserver(d));
  const wanted = new Set(
    homeservers.flatMap((h) => Object.values(busTopology(h.storage.busNamespace).streams)),
  );
  const streams: string[] = [];
  const nc = await connect({ servers: natsUrl, name: "secrets-scan" });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (wanted.has(name)) streams.push(name);
    }
  } finally {
    await nc.close();
  }
  return {
    postgres: { serverUrl: databaseUrl, databases: homeservers.flatMap((h) => h.storage.databases) },
    dataDirs: homeservers.map((h) => h.storage.dataDir),
    nats: { url: natsUrl, streams },
    logs: homeservers.map((h) => ({
      name: h.domain,
      component: "logs" as const,
      text: h.logs.map((l) => JSON.stringify(l)).join("\n"),
    })),
  };
}
