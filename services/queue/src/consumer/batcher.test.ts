import { describe, expect, it } from "vitest";
import { Batcher, BatcherClosedError } from "./batcher.js";

describe("Batcher", () => {
  it("groups what arrives while a batch runs into the next batch", async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const batcher = new Batcher<number>(
      async (items) => {
        batches.push(items);
        if (batches.length === 1) await gate;
      },
      { maxItems: 10, maxWeight: 100 },
    );
    const first = batcher.add(1);
    await new Promise((r) => setImmediate(r));
    const rest = [2, 3, 4].map((n) => batcher.add(n));
    release();
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it("respects the item and weight limits", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher<number>(
      async (items) => {
        batches.push(items);
      },
      { maxItems: 3, maxWeight: 10 },
      (n) => n,
    );
    await Promise.all([1, 1, 1, 1, 9, 9].map((n) => batcher.add(n)));
    expect(batches).toEqual([[1, 1, 1], [1, 9], [9]]);
  });

  it("retries a failed batch item by item so only the bad item fails", async () => {
    const batcher = new Batcher<number>(
      async (items) => {
        if (items.includes(13)) throw new Error("poison");
      },
      { maxItems: 10, maxWeight: 100 },
    );
    const results = await Promise.allSettled([1, 13, 2].map((n) => batcher.add(n)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("ordered: retries a failed batch as a whole while later items wait, so they are processed in order", async () => {
    const processed: number[] = [];
    let failures = 2;
    const batcher = new Batcher<number>(
      async (items) => {
        if (items.includes(1) && failures-- > 0) throw new Error("database down");
        processed.push(...items);
      },
      { maxItems: 2, maxWeight: 100, orderedRetryDelaysMs: [1] },
    );
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => batcher.add(n)));
    expect(results.map((r) => r.status)).toEqual(Array(5).fill("fulfilled"));
    expect(processed).toEqual([1, 2, 3, 4, 5]);
    expect(failures).toBe(-1);
  });

  it("ordered: close() gives up the batch being retried and every waiting item, none processed out of order", async () => {
    const processed: number[] = [];
    const retries: number[] = [];
    const batcher = new Batcher<number>(
      async (items) => {
        if (items.includes(1)) throw new Error("database down");
        processed.push(...items);
      },
      {
        maxItems: 1,
        maxWeight: 100,
        orderedRetryDelaysMs: [1, 5],
        onRetry: (_e, attempt) => retries.push(attempt),
      },
    );
    const waiting = [1, 2, 3].map((n) => batcher.add(n));
    while (retries.length < 3) await new Promise((r) => setTimeout(r, 2));
    batcher.close();
    const results = await Promise.allSettled(waiting);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BatcherClosedError);
    }
    expect(processed).toEqual([]);
    await expect(batcher.add(4)).rejects.toBeInstanceOf(BatcherClosedError);
  });
});
