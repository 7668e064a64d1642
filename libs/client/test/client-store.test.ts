import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { ClientStore } from "../src/store/client-store.js";
import * as schema from "../src/store/schema.js";

const dirs: string[] = [];
function freshPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "phoenix-store-"));
  dirs.push(dir);
  return join(dir, "client.sqlite");
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe("ClientStore: a value written with the next commit", () => {
  it("is read back at once, and commits with the next transaction", () => {
    const path = freshPath();
    const store = ClientStore.open(path);
    store.setBytesWithNextCommit("qs.next", bytes("7"));
    expect(text(store.getBytes("qs.next"))).toBe("7");
    const other = ClientStore.open(path);
    expect(other.getBytes("qs.next")).toBeUndefined();
    store.transaction(() => store.setBytes("effect", bytes("done")));
    expect(text(other.getBytes("qs.next"))).toBe("7");
    expect(text(other.getBytes("effect"))).toBe("done");
    other.close();
    store.close();
  });

  it("stays pending when that transaction rolls back, and is then written by flushPending", () => {
    const path = freshPath();
    const store = ClientStore.open(path);
    store.setBytesWithNextCommit("qs.next", bytes("8"));
    expect(() =>
      store.transaction(() => {
        store.setBytes("effect", bytes("half"));
        throw new Error("processing failed");
      }),
    ).toThrow("processing failed");
    const other = ClientStore.open(path);
    expect(other.getBytes("qs.next")).toBeUndefined();
    expect(other.getBytes("effect")).toBeUndefined();
    expect(text(store.getBytes("qs.next"))).toBe("8");
    store.flushPending();
    expect(text(other.getBytes("qs.next"))).toBe("8");
    expect(other.getBytes("effect")).toBeUndefined();
    other.close();
    store.close();
  });

  it("durable() resolves once the commits are synced, and a re-opened store has them", async () => {
    const path = freshPath();
    const store = ClientStore.open(path);
    store.setBytes("a", bytes("1"));
    await store.durable();
    store.setBytes("b", bytes("2"));
    await Promise.all([store.durable(), store.durable()]);
    store.close();
    const again = ClientStore.open(path);
    expect([text(again.getBytes("a")), text(again.getBytes("b"))]).toEqual(["1", "2"]);
    again.close();
  });
});

describe("ClientStore: a store made by an older client", () => {
  it("gains the columns added since (system messages' events) and keeps its rows", () => {
    const path = freshPath();
    const old = new Database(path);
    old.exec(`CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL,
      kind TEXT NOT NULL, sender_user_id TEXT, body TEXT NOT NULL, sent_at INTEGER NOT NULL, read INTEGER NOT NULL);
      INSERT INTO messages (conversation_id, kind, body, sent_at, read) VALUES ('c', 'system', 'a@x added b@x', 1, 0);`);
    old.close();
    const store = ClientStore.open(path);
    const rows = store.db.select().from(schema.messages).all();
    expect(rows).toEqual([expect.objectContaining({ body: "a@x added b@x", event: null })]);
    store.close();
  });
});
