// The snapshot-adversary scan and the active-observer check (docs/security.md): the identifiers
// a scenario's clients hold (collected from their own stores, never from a fixed list) are
// encoded every way a server could keep them, and every store an attacker with a warrant could
// seize (Postgres tables and pg_dump, PGlite and NATS store files, bus contents, log lines) and
// the working memory of a running service are searched for them as raw bytes.
import { execFile } from "node:child_process";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { AEAD_OVERHEAD, DEFAULT_PADDING_BUCKETS, paddedSize } from "@phoenix/crypto";
import Database from "better-sqlite3";
import pg from "pg";

/** What a needle is; the policy of a store says which kinds it may hold. */
export type NeedleKind =
  /** `uuid@domain` and the 16 uuid bytes. */
  | "user-id"
  /** The client's 16 uuid bytes (AS ClientId). */
  | "client-id"
  | "handle"
  | "display-name"
  | "title"
  | "text"
  /** The QS user record id and the QS client id (= the queue id). */
  | "queue-id"
  /** The AS-issued client credential and the client's signature public key inside it. */
  | "client-credential"
  /** A per-group leaf credential (pseudonymous, carries the encrypted client credential signature). */
  | "leaf-credential"
  /** The user's friendship token (the QS keeps only a keyed hash and a ciphertext of it). */
  | "friendship-token"
  | "push-token";

/** One identifier of the scenario. */
export interface Needle {
  kind: NeedleKind;
  /** Where it came from, e.g. `Alice's user id` (for reports). */
  label: string;
  /** The identifier's bytes (UTF-8 for text). */
  bytes: Uint8Array;
  /** Text needles are also searched as UTF-16LE; binary ones as raw bytes. */
  text: boolean;
}

/** One encoding of one needle: the byte string searched for. */
export interface Pattern {
  needle: Needle;
  /** `utf8`, `utf16le`, `raw`, `uuid`, `UUID`, `hex`, `HEX`, `base64@0..2`, `base64url@0..2`. */
  encoding: string;
  bytes: Uint8Array;
}

/**
 * Needles shorter than this many bytes are skipped: a 5-byte name ("Alice", "Bob") occurs by
 * chance in megabytes of ciphertext and source text, so a hit would prove nothing. Every random
 * id (16 bytes and more) and most texts of the scenarios are longer.
 */
export const MIN_NEEDLE_BYTES = 6;

/**
 * In a process's memory, human text (texts, titles, names, handles) shorter than this is not
 * searched: megabytes of library source and message tables hold short phrases like "message 8"
 * or "Removal" whatever the process handled (ids, random and long, are searched at any length).
 */
export const MIN_MEMORY_TEXT_BYTES = 10;

/** Encoded patterns shorter than this are dropped (a trimmed base64 alignment of a short needle). */
const MIN_PATTERN_BYTES = 5;

/** The identifiers of a scenario, deduplicated by kind and bytes. */
export class NeedleSet {
  private readonly byKey = new Map<string, Needle>();
  /** Values skipped for being shorter than {@link MIN_NEEDLE_BYTES}. */
  readonly skipped: string[] = [];

  /** Adds a text (UTF-8) or binary needle; too-short values are counted in `skipped`. */
  add(kind: NeedleKind, label: string, value: string | Uint8Array): void {
    const text = typeof value === "string";
    const bytes = text ? new TextEncoder().encode(value) : new Uint8Array(value);
    if (bytes.length < MIN_NEEDLE_BYTES) {
      this.skipped.push(text ? value : `${label} (${bytes.length} bytes)`);
      return;
    }
    const key = `${kind}:${Buffer.from(bytes).toString("hex")}`;
    if (!this.byKey.has(key)) this.byKey.set(key, { kind, label, bytes, text });
  }

  /** A user id `uuid@domain`: the text and the 16 uuid bytes. */
  addUserId(label: string, userId: string): void {
    this.add("user-id", label, userId);
    const uuid = userId.split("@")[0] ?? "";
    if (/^[0-9a-f-]{36}$/i.test(uuid)) this.add("user-id", `${label} (uuid)`, uuidBytes(uuid));
  }

  get needles(): Needle[] {
    return [...this.byKey.values()];
  }

  /** A copy without the needles `drop` selects (they are added to the copy's `skipped`). */
  without(drop: (needle: Needle) => boolean): NeedleSet {
    const copy = new NeedleSet();
    copy.skipped.push(...this.skipped);
    for (const [key, needle] of this.byKey) {
      if (drop(needle)) copy.skipped.push(needle.label);
      else copy.byKey.set(key, needle);
    }
    return copy;
  }

  /** Every encoding of every needle (see {@link encodeNeedle}), deduplicated by bytes. */
  patterns(): Pattern[] {
    const seen = new Set<string>();
    const out: Pattern[] = [];
    for (const needle of this.byKey.values()) {
      for (const p of encodeNeedle(needle)) {
        const key = Buffer.from(p.bytes).toString("latin1");
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(p);
      }
    }
    return out;
  }
}

/**
 * The byte strings a store could hold `needle` as: the bytes themselves (UTF-8 text or raw
 * binary), UTF-16LE for text, the canonical uuid text for 16-byte ids, hex in both cases, and
 * base64 / base64url at all three alignments (inside a larger base64 blob the needle starts at
 * byte offset 0, 1 or 2 of a 3-byte group; only the characters made of the needle's bits alone
 * are kept).
 */
export function encodeNeedle(needle: Needle): Pattern[] {
  const raw = Buffer.from(needle.bytes);
  const out: Pattern[] = [{ needle, encoding: needle.text ? "utf8" : "raw", bytes: raw }];
  if (needle.text)
    out.push({ needle, encoding: "utf16le", bytes: Buffer.from(raw.toString("utf8"), "utf16le") });
  if (!needle.text && raw.length === 16) {
    const hex = raw.toString("hex");
    const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    out.push({ needle, encoding: "uuid", bytes: Buffer.from(uuid) });
    out.push({ needle, encoding: "UUID", bytes: Buffer.from(uuid.toUpperCase()) });
  }
  out.push({ needle, encoding: "hex", bytes: Buffer.from(raw.toString("hex")) });
  out.push({ needle, encoding: "HEX", bytes: Buffer.from(raw.toString("hex").toUpperCase()) });
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), raw]).toString("base64");
    const from = Math.ceil((8 * shift) / 6);
    const to = Math.floor((8 * (shift + raw.length)) / 6);
    const core = b64.slice(from, to);
    out.push({ needle, encoding: `base64@${shift}`, bytes: Buffer.from(core) });
    out.push({
      needle,
      encoding: `base64url@${shift}`,
      bytes: Buffer.from(core.replaceAll("+", "-").replaceAll("/", "_")),
    });
  }
  return out.filter((p) => p.bytes.length >= MIN_PATTERN_BYTES);
}

/** The 16 bytes of a textual uuid. */
export function uuidBytes(uuid: string): Uint8Array {
  return new Uint8Array(Buffer.from(uuid.replaceAll("-", ""), "hex"));
}

/** A pattern found at `offset` of the scanned bytes. */
export interface Match {
  pattern: Pattern;
  offset: number;
}

/**
 * Searches many patterns at once in one pass: every position's first 4 bytes are looked up in a
 * 16-million-bit filter, and only filter hits are compared against the patterns starting with
 * those 4 bytes. Linear in the data, whatever the number of patterns.
 */
export class PatternScanner {
  private readonly filter = new Uint8Array(1 << 21);
  private readonly byPrefix = new Map<number, Pattern[]>();
  /** The longest pattern: chunks of a long input overlap by this minus one. */
  readonly maxLength: number;

  constructor(readonly patterns: readonly Pattern[]) {
    let max = 4;
    for (const p of patterns) {
      if (p.bytes.length < 4) throw new Error(`pattern shorter than 4 bytes: ${p.needle.label}`);
      const key = prefix(p.bytes, 0);
      const h = filterSlot(key);
      (this.filter[h >>> 3] as number) |= 1 << (h & 7);
      const list = this.byPrefix.get(key);
      if (list) list.push(p);
      else this.byPrefix.set(key, [p]);
      max = Math.max(max, p.bytes.length);
    }
    this.maxLength = max;
  }

  /** Every occurrence of every pattern in `data`. */
  scan(data: Uint8Array): Match[] {
    const out: Match[] = [];
    const n = data.length;
    const filter = this.filter;
    for (let i = 0; i + 4 <= n; i++) {
      const key = prefix(data, i);
      const h = filterSlot(key);
      if (((filter[h >>> 3] as number) & (1 << (h & 7))) === 0) continue;
      const candidates = this.byPrefix.get(key);
      if (candidates === undefined) continue;
      for (const p of candidates) {
        const b = p.bytes;
        if (i + b.length > n) continue;
        let j = 4;
        while (j < b.length && data[i + j] === b[j]) j++;
        if (j === b.length) out.push({ pattern: p, offset: i });
      }
    }
    return out;
  }
}

function prefix(data: Uint8Array, i: number): number {
  return (
    ((data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24)) >>>
    0
  );
}

function filterSlot(key: number): number {
  return Math.imul(key, 0x9e3779b1) >>> 8;
}

// ---------------------------------------------------------------------------------------------
// Places and policy

/** Which server component a store or a memory image belongs to. */
export type Component =
  | "auth"
  | "delivery"
  | "queue"
  | "federation"
  | "edge"
  | "bus"
  | "logs"
  | "shared"
  | "other";

/** One scanned blob: where it lives and its bytes. */
export interface Blob {
  /** The store class: `postgres`, `pg_dump`, `pglite-files`, `nats-store`, `jetstream`, `logs`, `memory`. */
  store: string;
  component: Component;
  /** Database/table/column/row, file path, stream/sequence or memory region. */
  location: string;
  bytes: Uint8Array;
}

/**
 * What each component may hold in the clear, from the threat model (docs/security.md): the AS
 * knows user ids, client ids and issued client credentials (handles only as hashes); the QS
 * knows its pseudonymous user/client records (queue ids); everything else — display names,
 * titles, texts, handles, leaf credentials, push tokens — is nowhere in the clear. Memory of the
 * DS may hold leaf credentials (it validates commits on the decrypted group state); this policy
 * is for persisted stores, see {@link MEMORY_POLICY}.
 */
export const STORE_POLICY: Readonly<Record<Component, readonly NeedleKind[]>> = {
  auth: ["user-id", "client-id", "client-credential"],
  delivery: [],
  queue: ["queue-id"],
  federation: [],
  edge: [],
  bus: [],
  logs: [],
  // The all-in-one's one embedded database: its write-ahead log and transaction status files
  // carry the rows of every service, so they may hold what any of them may. Its table files are
  // attributed to their service (the schema they live in).
  shared: ["user-id", "client-id", "client-credential", "queue-id"],
  other: [],
};

/**
 * What each process may hold in working memory (the active observer): leaf credentials are
 * pseudonyms by design — the DS sees them in the decrypted group state, the QS in the
 * AddPackages (KeyPackages) it seals at rest and hands out, the federation gateway in what it
 * forwards; the QS also sees its queue ids and friendship tokens. None of them ever holds a user
 * id, client id, client credential, handle, name, title or text.
 */
export const MEMORY_POLICY: Readonly<Record<Component, readonly NeedleKind[]>> = {
  ...STORE_POLICY,
  delivery: ["leaf-credential"],
  queue: ["queue-id", "friendship-token", "leaf-credential"],
  federation: ["leaf-credential"],
};

/** A needle found where the policy forbids it. */
export interface Hit {
  store: string;
  component: Component;
  location: string;
  offset: number;
  kind: NeedleKind;
  label: string;
  encoding: string;
}

/** Figures of one scan. */
export interface ScanReport {
  hits: Hit[];
  /** Hits the policy allows (counted, not reported one by one). */
  allowed: number;
  /** Allowed matches per `<component> <kind>`: shows the scan did read the stores it names. */
  allowedByPlace: Record<string, number>;
  /**
   * Matches of patterns that a baseline of the same component already held before the scenario
   * created them (e.g. "message 0" in a library's source text): not attributable, counted here
   * with the needles concerned.
   */
  inBaseline: number;
  baselineNeedles: string[];
  blobs: number;
  bytes: number;
  /** Bytes per store class. */
  bytesByStore: Record<string, number>;
  needles: number;
  patterns: number;
}

/** Chunk size for long blobs (memory regions, large files): scanned with overlap. */
const CHUNK = 8 * 1024 * 1024;

/** Scans blobs for the needles and sorts matches into forbidden hits and allowed ones. */
export class SecretsScan {
  private readonly scanner: PatternScanner;
  readonly report: ScanReport;

  constructor(
    readonly needles: NeedleSet,
    private readonly policy: Readonly<Record<Component, readonly NeedleKind[]>> = STORE_POLICY,
  ) {
    const patterns = needles.patterns();
    this.scanner = new PatternScanner(patterns);
    this.report = {
      hits: [],
      allowed: 0,
      allowedByPlace: {},
      inBaseline: 0,
      baselineNeedles: [],
      blobs: 0,
      bytes: 0,
      bytesByStore: {},
      needles: needles.needles.length,
      patterns: patterns.length,
    };
  }

  /**
   * Marks the patterns found in `blob` — a copy of the same component taken before the scenario
   * ran (a process's memory right after start) — as not attributable for that component.
   */
  addBaseline(blob: Blob): void {
    this.matches(blob, (_, pattern) => {
      const seen = this.baseline.get(blob.component) ?? new Set<Pattern>();
      this.baseline.set(blob.component, seen);
      if (!seen.has(pattern)) {
        seen.add(pattern);
        this.report.baselineNeedles.push(`${blob.component}: ${pattern.needle.label} as ${pattern.encoding}`);
      }
    });
  }

  private readonly baseline = new Map<Component, Set<Pattern>>();

  /** Scans one blob (any length). */
  add(blob: Blob): void {
    this.report.blobs++;
    this.report.bytes += blob.bytes.length;
    this.report.bytesByStore[blob.store] = (this.report.bytesByStore[blob.store] ?? 0) + blob.bytes.length;
    this.matches(blob, (offset, pattern) => this.record(blob, offset, pattern));
  }

  private matches(blob: Blob, found: (offset: number, pattern: Pattern) => void): void {
    const step = CHUNK;
    const overlap = this.scanner.maxLength - 1;
    for (let start = 0; start < blob.bytes.length; start += step) {
      const end = Math.min(blob.bytes.length, start + step + overlap);
      for (const m of this.scanner.scan(blob.bytes.subarray(start, end))) {
        // A match inside the overlap is found again by the next chunk unless it started here.
        if (m.offset >= step && end < blob.bytes.length) continue;
        found(start + m.offset, m.pattern);
      }
      if (end === blob.bytes.length) break;
    }
  }

  /** Scans every blob of an async source. */
  async addAll(source: AsyncIterable<Blob>): Promise<void> {
    for await (const blob of source) this.add(blob);
  }

  private record(blob: Blob, offset: number, pattern: Pattern): void {
    if (this.policy[blob.component].includes(pattern.needle.kind)) {
      this.report.allowed++;
      const place = `${blob.component} ${pattern.needle.kind}`;
      this.report.allowedByPlace[place] = (this.report.allowedByPlace[place] ?? 0) + 1;
      return;
    }
    if (this.baseline.get(blob.component)?.has(pattern)) {
      this.report.inBaseline++;
      return;
    }
    this.report.hits.push({
      store: blob.store,
      component: blob.component,
      location: blob.location,
      offset,
      kind: pattern.needle.kind,
      label: pattern.needle.label,
      encoding: pattern.encoding,
    });
  }
}

/** One line per hit, grouped (for assertion messages): store, place, needle, encoding. */
export function describeHits(hits: readonly Hit[], limit = 60): string {
  const lines = hits
    .slice(0, limit)
    .map(
      (h) => `${h.store} ${h.component} ${h.location} @${h.offset}: ${h.kind} "${h.label}" as ${h.encoding}`,
    );
  if (hits.length > limit) lines.push(`… and ${hits.length - limit} more`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Needles from a client's own store

/**
 * Everything identifying that a client keeps in its SQLite store (the scenario's model): its
 * user id, client id, QS user and client ids (queue ids), client credential, handles, display
 * name, the titles, members and texts of its conversations, its contacts' ids and names, and
 * every leaf credential it holds (own and of published AddPackages). Opened read-only; the
 * client may keep running.
 */
export function needlesFromClientStore(needles: NeedleSet, storePath: string, who: string): void {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    const kv = (key: string): Buffer | undefined =>
      (db.prepare("SELECT value FROM kv WHERE key = ?").get(key) as { value: Buffer } | undefined)?.value;
    const json = <T>(key: string): T | undefined => {
      const v = kv(key);
      return v === undefined ? undefined : (JSON.parse(v.toString("utf8")) as T);
    };
    const account = json<Record<string, string>>("account");
    if (account !== undefined) {
      const hex = (f: string) => new Uint8Array(Buffer.from(account[f] ?? "", "hex"));
      const userUuid = Buffer.from(hex("userUuid")).toString("hex");
      const uuidText = `${userUuid.slice(0, 8)}-${userUuid.slice(8, 12)}-${userUuid.slice(12, 16)}-${userUuid.slice(16, 20)}-${userUuid.slice(20)}`;
      needles.addUserId(`${who}'s user id`, `${uuidText}@${account.domain}`);
      needles.add("client-id", `${who}'s client id`, hex("clientUuid"));
      needles.add("queue-id", `${who}'s QS user id`, hex("qsUserId"));
      needles.add("queue-id", `${who}'s QS client id`, hex("qsClientId"));
      needles.add("client-credential", `${who}'s client credential`, hex("clientCredential"));
      needles.add("friendship-token", `${who}'s friendship token`, hex("friendshipToken"));
      if (account.displayName) needles.add("display-name", `${who}'s display name`, account.displayName);
    }
    for (const handle of json<string[]>("handles") ?? []) needles.add("handle", `${who}'s handle`, handle);
    for (const key of ["push-token", "pushToken"]) {
      const token = kv(key);
      if (token !== undefined) needles.add("push-token", `${who}'s push token`, new Uint8Array(token));
    }
    const rows = <T>(sql: string) => db.prepare(sql).all() as T[];
    for (const c of rows<{ title: string; leaf_credential: Buffer; peer_user_id: string | null }>(
      "SELECT title, leaf_credential, peer_user_id FROM conversations",
    )) {
      needles.add("title", `title "${c.title}"`, c.title);
      needles.add("leaf-credential", `${who}'s leaf credential`, new Uint8Array(c.leaf_credential));
      if (c.peer_user_id) needles.addUserId(`${who}'s peer`, c.peer_user_id);
    }
    for (const p of rows<{ leaf_credential: Buffer }>("SELECT leaf_credential FROM add_package_keys"))
      needles.add(
        "leaf-credential",
        `${who}'s AddPackage leaf credential`,
        new Uint8Array(p.leaf_credential),
      );
    for (const m of rows<{ user_id: string }>("SELECT DISTINCT user_id FROM members"))
      needles.addUserId(`member seen by ${who}`, m.user_id);
    for (const c of rows<{ user_id: string; display_name: string | null }>(
      "SELECT user_id, display_name FROM contacts",
    )) {
      needles.addUserId(`${who}'s contact`, c.user_id);
      if (c.display_name) needles.add("display-name", `contact name "${c.display_name}"`, c.display_name);
    }
    for (const m of rows<{ body: string }>("SELECT DISTINCT body FROM messages WHERE kind = 'text'"))
      needles.add("text", `text "${m.body}"`, m.body);
  } finally {
    db.close();
  }
}

/** The `*.sqlite` client stores in `dir` (a World's or TestClients' directory). */
export async function clientStoresIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(".sqlite")).map((f) => join(dir, f));
}

// ---------------------------------------------------------------------------------------------
// Store readers

/**
 * Every cell of every table of a Postgres database, read through SQL so bytea arrives as its
 * raw bytes (a plain pg_dump hex-escapes it); text as UTF-8, other values as their JSON.
 */
export async function* postgresTables(
  serverUrl: string,
  database: string,
  component: Component,
): AsyncGenerator<Blob> {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: "secrets-scan" });
  client.on("error", () => {});
  await client.connect();
  try {
    const tables = await client.query<{ schema: string; name: string }>(
      `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
       WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    );
    for (const { schema, name } of tables.rows) {
      const result = await client.query(`SELECT * FROM "${schema}"."${name}"`);
      for (const [row, record] of result.rows.entries()) {
        for (const [column, value] of Object.entries(record as Record<string, unknown>)) {
          if (value === null || value === undefined) continue;
          yield {
            store: "postgres",
            component,
            location: `${database}.${schema}.${name}.${column} row ${row}`,
            bytes: valueBytes(value),
          };
        }
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function valueBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return Buffer.from(JSON.stringify(value) ?? String(value), "utf8");
}

/**
 * The raw relation files of a Postgres database (`<data_directory>/base/<oid>/`, readable by
 * root on the database host): what a disk image or a file-level backup holds, including rows
 * that were deleted but not yet overwritten. Undefined when the server is not local or the
 * files are not readable. (`pg_wal` is shared by every database of the server and left out.)
 */
export async function postgresRelationFiles(
  serverUrl: string,
  database: string,
  component: Component,
): Promise<AsyncGenerator<Blob> | undefined> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: "secrets-scan" });
  client.on("error", () => {});
  await client.connect();
  let dir: string;
  try {
    await client.query("CHECKPOINT"); // dirty pages reach the files, as on a crash-consistent copy
    const dataDir = (await client.query<{ d: string }>("SELECT current_setting('data_directory') AS d"))
      .rows[0]?.d;
    const oid = (
      await client.query<{ oid: number }>("SELECT oid FROM pg_database WHERE datname = $1", [database])
    ).rows[0]?.oid;
    if (dataDir === undefined || oid === undefined) return undefined;
    dir = join(dataDir, "base", String(oid));
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
  if ((await readdir(dir).catch(() => undefined)) === undefined) return undefined;
  return filesUnder(dir, "postgres-files", () => component, isCatalogFile);
}

/**
 * Whether a Postgres data file belongs to the system catalogs (relfilenode below 16384, the
 * first user object id, or `global/`): the schema, full of words like "before" that short texts
 * of a scenario may equal. Only user tables (and their TOAST tables and indexes) are scanned raw;
 * the catalogs' column statistics (pg_statistic samples) are therefore not.
 */
export function isCatalogFile(path: string): boolean {
  if (/\/global\//.test(path)) return true;
  const m = /\/base\/\d+\/(\d+)(_[a-z]+)?(\.\d+)?$/.exec(path);
  return m !== null && Number(m[1]) < 16384;
}

/**
 * The data of a plain-text `pg_dump` of a database (what a backup holds; bytea appears
 * hex-escaped): its COPY blocks. The schema part is the services' migrations — code, full of
 * words like "before" that short texts of a scenario may equal — and is left out.
 */
export async function* pgDump(
  serverUrl: string,
  database: string,
  component: Component,
): AsyncGenerator<Blob> {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const { stdout } = await promisify(execFile)("pg_dump", ["--no-owner", "--format=plain", url.toString()], {
    maxBuffer: 512 * 1024 * 1024,
    encoding: "buffer",
  });
  let offset = 0;
  for (const block of stdout.toString("utf8").split(/^(?=COPY )/m)) {
    const end = block.indexOf("\n\\.\n");
    if (block.startsWith("COPY ") && end >= 0) {
      // The rows only: the COPY line names the columns ("not_before").
      const table = block.slice(5, block.indexOf(" ", 5));
      const rows = block.indexOf("\n") + 1;
      yield {
        store: "pg_dump",
        component,
        location: `pg_dump ${database} ${table} (dump offset ${offset + rows})`,
        bytes: Buffer.from(block.slice(rows, end + 1), "utf8"),
      };
    }
    offset += Buffer.byteLength(block, "utf8");
  }
}

/** Every file under `dir` not `skip`ped, raw (PGlite data directories, a NATS store directory). */
export async function* filesUnder(
  dir: string,
  store: string,
  componentOf: (path: string) => Component,
  skip: (path: string) => boolean = () => false,
): AsyncGenerator<Blob> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (skip(path)) continue;
    const bytes = await readFile(path).catch(() => undefined);
    if (bytes !== undefined) yield { store, component: componentOf(path), location: path, bytes };
  }
}

/** Every message still in the JetStream streams named (subject, headers and data). */
export async function* jetStreamMessages(natsUrl: string, streams: readonly string[]): AsyncGenerator<Blob> {
  const nc = await connect({ servers: natsUrl, name: "secrets-scan" });
  try {
    const jsm = await jetstreamManager(nc);
    for (const stream of streams) {
      const info = await jsm.streams.info(stream).catch(() => undefined);
      if (info === undefined) continue;
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
        if (m === undefined || m === null) continue;
        const headers = m.header ? Buffer.from(m.header.toString()) : Buffer.alloc(0);
        yield {
          store: "jetstream",
          component: "bus",
          location: `stream ${stream} seq ${seq} (${m.subject})`,
          bytes: Buffer.concat([Buffer.from(m.subject), headers, m.data]),
        };
      }
    }
  } finally {
    await nc.close();
  }
}

/**
 * The JetStream store directory of the NATS server: `NATS_STORE_DIR`, else the `-sd`/`--store_dir`
 * argument of a local nats-server process (readable as root), else undefined.
 */
export async function natsStoreDir(): Promise<string | undefined> {
  if (process.env.NATS_STORE_DIR) return process.env.NATS_STORE_DIR;
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const args = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (!args[0]?.endsWith("nats-server")) continue;
    const i = args.findIndex((a) => a === "-sd" || a === "--store_dir");
    if (i >= 0 && args[i + 1]) return args[i + 1];
  }
  return undefined;
}

/** The store-directory folders of the streams named (files of all accounts), raw. */
export async function* natsStreamFiles(storeDir: string, streams: readonly string[]): AsyncGenerator<Blob> {
  const root = join(storeDir, "jetstream");
  for (const account of await readdir(root).catch(() => [] as string[])) {
    for (const stream of streams) {
      const dir = join(root, account, "streams", stream);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) continue;
      yield* filesUnder(dir, "nats-store", () => "bus");
    }
  }
}

/** Log text (pino lines) of one component. */
export function logBlob(component: Component, name: string, text: string): Blob {
  return {
    store: "logs",
    component: "logs",
    location: `${name} (${component}) log`,
    bytes: Buffer.from(text),
  };
}

/** Figures of one memory read. */
export interface MemoryRead {
  pid: number;
  regions: number;
  bytes: number;
  /** Regions that could not be read (guard pages, vvar). */
  unreadable: number;
}

/**
 * The working memory of process `pid` (root, or the same user with ptrace allowed): every
 * readable region of /proc/PID/maps read through /proc/PID/mem, except read-only file mappings
 * (their content is the file on disk — code, not data the process learned) and [vvar]/[vsyscall].
 * At most `maxBytes` in total; `read` receives the figures.
 */
export async function* processMemory(
  pid: number,
  component: Component,
  options: { maxBytes?: number; read?: MemoryRead } = {},
): AsyncGenerator<Blob> {
  const maxBytes = options.maxBytes ?? 2 * 1024 * 1024 * 1024;
  const figures = options.read ?? { pid, regions: 0, bytes: 0, unreadable: 0 };
  figures.pid = pid;
  const maps = await readFile(`/proc/${pid}/maps`, "utf8");
  const mem = await open(`/proc/${pid}/mem`, "r");
  try {
    for (const line of maps.split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const [, from, to, perms, inode, path] = m as unknown as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      if (perms[0] !== "r") continue;
      if (path === "[vvar]" || path === "[vsyscall]" || path === "[vvar_vclock]") continue;
      if (inode !== "0" && perms[1] !== "w") continue;
      const start = Number.parseInt(from, 16);
      const length = Number.parseInt(to, 16) - start;
      for (let off = 0; off < length && figures.bytes < maxBytes; off += CHUNK) {
        // Overlapping reads, so a needle across a chunk border is found (maybe twice).
        const size = Math.min(CHUNK + 1024, length - off, maxBytes - figures.bytes);
        const buffer = Buffer.allocUnsafe(size);
        let got = 0;
        try {
          ({ bytesRead: got } = await mem.read(buffer, 0, size, start + off));
        } catch {
          figures.unreadable++;
          break;
        }
        if (off === 0) figures.regions++;
        figures.bytes += got;
        yield {
          store: "memory",
          component,
          location: `pid ${pid} ${from}-${to} ${perms} ${path || "[anon]"} +${off}`,
          bytes: buffer.subarray(0, got),
        };
      }
    }
  } finally {
    await mem.close();
  }
}

/**
 * The DS `groups.state` sizes that are not an EAR ciphertext of a padding bucket (AEAD overhead
 * plus one of `buckets`, or a multiple of the largest above it): an empty list means every
 * stored group state hides its size in a bucket.
 */
export async function unpaddedGroupStates(
  serverUrl: string,
  database: string,
  buckets: readonly number[] = DEFAULT_PADDING_BUCKETS,
): Promise<{ rows: number; sizes: number[]; unpadded: number[] }> {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: "secrets-scan" });
  client.on("error", () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ size: number }>("SELECT octet_length(state) AS size FROM groups");
    const sizes = rows.map((r) => Number(r.size));
    return {
      rows: sizes.length,
      sizes,
      unpadded: sizes.filter((s) => !isBucketSize(s - AEAD_OVERHEAD, buckets)),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether `size` is a padded size of `buckets` (see libs/crypto padding). */
export function isBucketSize(size: number, buckets: readonly number[] = DEFAULT_PADDING_BUCKETS): boolean {
  return size > 0 && paddedSize(size - 4, buckets) === size;
}
