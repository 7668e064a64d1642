import { describe, expect, it } from "vitest";
import { Batcher } from "./batcher.js";

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
});
