// The scan itself must be able to fail: each encoding of a planted needle is found, inside larger
// blobs and across chunk borders, in a Postgres table, and in the memory of a live process.

import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  encodeNeedle,
  isBucketSize,
  isCatalogFile,
  type MemoryRead,
  MIN_NEEDLE_BYTES,
  NeedleSet,
  PatternScanner,
  pgDump,
  postgresRelationFiles,
  postgresTables,
  processMemory,
  SecretsScan,
} from "../src/secrets-scan.js";
import { adminQueries, dropDatabases } from "../src/storage.js";

describe("needles and encodings", () => {
  it("skips needles shorter than the minimum and deduplicates", () => {
    const needles = new NeedleSet();
    needles.add("display-name", "Bob", "Bob");
    needles.add("title", "t", "Book club");
    needles.add("title", "t again", "Book club");
    expect(MIN_NEEDLE_BYTES).toBe(6);
    expect(needles.skipped).toEqual(["Bob"]);
    expect(needles.needles).toHaveLength(1);
  });

  it("a copy without some needles lists them as skipped", () => {
    const needles = new NeedleSet();
    needles.add("title", "short title", "Removal");
    needles.add("text", "long text", "chapter 3 tonight?");
    const copy = needles.without((n) => n.text && n.bytes.length < 10);
    expect(copy.needles.map((n) => n.label)).toEqual(["long text"]);
    expect(copy.skipped).toEqual(["short title"]);
    expect(needles.needles).toHaveLength(2);
  });

  it("a user id yields its text and its 16 uuid bytes", () => {
    const needles = new NeedleSet();
    const uuid = randomUUID();
    needles.addUserId("u", `${uuid}@alpha.test`);
    const byKind = needles.needles.map((n) => [n.text, n.bytes.length]);
    expect(byKind).toEqual([
      [true, `${uuid}@alpha.test`.length],
      [false, 16],
    ]);
  });

  it("finds a needle in every encoding, whatever its base64 alignment inside a larger blob", () => {
    const id = new Uint8Array(randomBytes(16));
    const text = "chapter 3 tonight?";
    const needles = new NeedleSet();
    needles.add("client-id", "id", id);
    needles.add("text", "text", text);
    const scanner = new PatternScanner(needles.patterns());
    const embeddings: [string, Buffer][] = [];
    for (const [value, isText] of [
      [Buffer.from(id), false],
      [Buffer.from(text), true],
    ] as const) {
      if (isText) embeddings.push(["utf16le", Buffer.from(text, "utf16le")]);
      embeddings.push(["hex", Buffer.from(value.toString("hex"))]);
      embeddings.push(["HEX", Buffer.from(value.toString("hex").toUpperCase())]);
      for (let pre = 0; pre < 3; pre++) {
        const blob = Buffer.concat([randomBytes(pre + 3), value, randomBytes(5)]);
        embeddings.push([`base64 (${pre})`, Buffer.from(blob.toString("base64"))]);
        embeddings.push([`base64url (${pre})`, Buffer.from(blob.toString("base64url"))]);
      }
    }
    const hex = Buffer.from(id).toString("hex");
    embeddings.push([
      "uuid",
      Buffer.from(
        `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
      ),
    ]);
    embeddings.push(["raw", Buffer.from(id)]);
    embeddings.push(["utf8", Buffer.from(text)]);
    for (const [what, encoded] of embeddings) {
      const data = Buffer.concat([randomBytes(100), encoded, randomBytes(100)]);
      expect(scanner.scan(data).length, what).toBeGreaterThan(0);
    }
    // And nothing in noise.
    expect(scanner.scan(randomBytes(1 << 20))).toEqual([]);
  });

  it("encodes a text needle in utf8, utf16le, hex and six base64 variants", () => {
    const needles = new NeedleSet();
    needles.add("text", "t", "hello Bob");
    const encodings = encodeNeedle(needles.needles[0] as never).map((p) => p.encoding);
    expect(encodings).toEqual([
      "utf8",
      "utf16le",
      "hex",
      "HEX",
      "base64@0",
      "base64url@0",
      "base64@1",
      "base64url@1",
      "base64@2",
      "base64url@2",
    ]);
  });

  it("reports the hit's place and applies the policy: the AS may hold a user id, the DS not", () => {
    const needles = new NeedleSet();
    const userId = `${randomUUID()}@alpha.test`;
    needles.addUserId("Alice's user id", userId);
    const scan = new SecretsScan(needles);
    const data = Buffer.concat([randomBytes(9 * 1024 * 1024 - 10), Buffer.from(userId), randomBytes(50)]);
    scan.add({ store: "files", component: "auth", location: "as.db", bytes: data });
    scan.add({ store: "files", component: "delivery", location: "ds.db", bytes: data });
    // The user id's text holds the uuid's text: two encodings of the user id match, twice each.
    expect(scan.report.allowed).toBe(2);
    expect(scan.report.allowedByPlace).toEqual({ "auth user-id": 2 });
    expect(
      scan.report.hits.map((h) => [h.store, h.component, h.location, h.offset, h.kind, h.encoding]),
    ).toEqual([
      ["files", "delivery", "ds.db", 9 * 1024 * 1024 - 10, "user-id", "utf8"],
      ["files", "delivery", "ds.db", 9 * 1024 * 1024 - 10, "user-id", "uuid"],
    ]);
  });

  it("does not blame a pattern a baseline of the same component already held", () => {
    const needles = new NeedleSet();
    needles.add("text", "common", "message 0");
    needles.add("text", "new", "chapter 3 tonight?");
    const scan = new SecretsScan(needles);
    scan.addBaseline({
      store: "memory-baseline",
      component: "queue",
      location: "b",
      bytes: Buffer.from("xx message 0 xx"),
    });
    const later = Buffer.from("message 0 ... chapter 3 tonight?");
    scan.add({ store: "memory", component: "queue", location: "m", bytes: later });
    scan.add({ store: "memory", component: "delivery", location: "m", bytes: later });
    expect(scan.report.inBaseline).toBe(1);
    expect(scan.report.baselineNeedles).toEqual(["queue: common as utf8"]);
    expect(scan.report.hits.map((h) => `${h.component} ${h.label}`)).toEqual([
      "queue new",
      "delivery common",
      "delivery new",
    ]);
  });

  it("tells system catalog files from user tables", () => {
    expect(isCatalogFile("/pg/base/5/1255")).toBe(true);
    expect(isCatalogFile("/pg/base/5/2619_fsm")).toBe(true);
    expect(isCatalogFile("/pg/global/1262")).toBe(true);
    expect(isCatalogFile("/pg/base/90216/90768")).toBe(false);
    expect(isCatalogFile("/pg/base/5/16398.1")).toBe(false);
    expect(isCatalogFile("/pg/pg_wal/000000010000000000000001")).toBe(false);
  });

  it("knows the padded sizes of group state", () => {
    expect(isBucketSize(256)).toBe(true);
    expect(isBucketSize(4096)).toBe(true);
    expect(isBucketSize(300)).toBe(false);
  });
});

describe("store readers", () => {
  const database = `scan_${randomBytes(5).toString("hex")}`;
  const serverUrl = process.env.DATABASE_URL as string;

  beforeAll(async () => {
    await adminQueries(serverUrl, [`CREATE DATABASE "${database}"`]);
  });
  afterAll(async () => {
    await dropDatabases(serverUrl, [database]);
  });

  it("finds a needle planted as bytea in a Postgres table", async () => {
    const secret = new Uint8Array(randomBytes(16));
    const url = new URL(serverUrl);
    url.pathname = `/${database}`;
    await adminQueries(url.toString(), [
      "CREATE TABLE planted (id int, payload bytea)",
      `INSERT INTO planted VALUES (1, '\\x00${Buffer.from(secret).toString("hex")}00')`,
    ]);
    const needles = new NeedleSet();
    needles.add("client-id", "planted id", secret);
    const scan = new SecretsScan(needles);
    await scan.addAll(postgresTables(serverUrl, database, "delivery"));
    expect(scan.report.hits.map((h) => [h.location, h.offset, h.encoding])).toEqual([
      [`${database}.public.planted.payload row 0`, 1, "raw"],
    ]);
  });

  it("finds a text planted in a table in the pg_dump's data, not in its schema", async () => {
    const url = new URL(serverUrl);
    url.pathname = `/${database}`;
    await adminQueries(url.toString(), [
      "CREATE TABLE notes (body text)",
      "COMMENT ON TABLE notes IS 'zebra crossing'",
      "INSERT INTO notes VALUES ('a chapter 3 tonight? b')",
    ]);
    const needles = new NeedleSet();
    needles.add("text", "planted text", "chapter 3 tonight?");
    needles.add("text", "schema words", "zebra crossing");
    const scan = new SecretsScan(needles);
    await scan.addAll(pgDump(serverUrl, database, "delivery"));
    expect(scan.report.hits.map((h) => [h.store, h.label, h.location.split(" (")[0]])).toEqual([
      ["pg_dump", "planted text", `pg_dump ${database} public.notes`],
    ]);
  });

  it("finds a deleted row in the database's raw files (root on the database host)", async (context) => {
    const secret = new Uint8Array(randomBytes(16));
    const url = new URL(serverUrl);
    url.pathname = `/${database}`;
    await adminQueries(url.toString(), [
      "CREATE TABLE outbox (payload bytea)",
      `INSERT INTO outbox VALUES ('\\x${Buffer.from(secret).toString("hex")}')`,
      "DELETE FROM outbox",
    ]);
    const files = await postgresRelationFiles(serverUrl, database, "delivery");
    if (files === undefined) return context.skip(); // not root, or a remote server
    const needles = new NeedleSet();
    needles.add("client-id", "deleted id", secret);
    const scan = new SecretsScan(needles);
    await scan.addAll(files);
    // Gone for SQL, still on disk: a snapshot of the files yields it.
    expect(scan.report.hits.map((h) => [h.store, h.label, h.encoding])).toEqual([
      ["postgres-files", "deleted id", "raw"],
    ]);
  });

  it("finds a needle in the working memory of a live process", async () => {
    const secret = `needle-${randomBytes(12).toString("hex")}`;
    // The child keeps the needle only as the bytes of a Buffer built at run time (not in its argv
    // or source: it receives it reversed).
    const child = spawn(
      process.execPath,
      [
        "-e",
        "const b = Buffer.from(process.argv[1].split('').reverse().join('')); setInterval(() => b[0], 1000); console.log('ready');",
        secret.split("").reverse().join(""),
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    try {
      await new Promise((resolve) => child.stdout?.once("data", resolve));
      const needles = new NeedleSet();
      needles.add("text", "planted", secret);
      const scan = new SecretsScan(needles);
      const read: MemoryRead = { pid: 0, regions: 0, bytes: 0, unreadable: 0 };
      await scan.addAll(processMemory(child.pid as number, "queue", { read }));
      expect(read.bytes).toBeGreaterThan(1024 * 1024);
      expect(scan.report.hits.filter((h) => h.encoding === "utf8").length).toBeGreaterThan(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
