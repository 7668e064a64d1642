import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PushCoalescer } from "./coalescer.js";

describe("push coalescer", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("turns a burst for one queue into one push now and one at the interval's end", () => {
    const sent: string[] = [];
    const c = new PushCoalescer<string>(10_000, (job) => sent.push(job));
    expect(c.request("q1", "m0")).toBe(true);
    for (let i = 1; i < 100; i++) expect(c.request("q1", `m${i}`)).toBe(false);
    expect(sent).toEqual(["m0"]);
    vi.advanceTimersByTime(10_000);
    // The trailing push carries the newest job.
    expect(sent).toEqual(["m0", "m99"]);
    // Nothing more arrived: the queue's interval ends without a push and the next one is immediate.
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual(["m0", "m99"]);
    expect(c.size).toBe(0);
    expect(c.request("q1", "later")).toBe(true);
    expect(sent).toEqual(["m0", "m99", "later"]);
    c.close();
  });

  it("keeps queues apart and drops waiting pushes at close", () => {
    const sent: string[] = [];
    const c = new PushCoalescer<string>(10_000, (job) => sent.push(job));
    c.request("q1", "a1");
    c.request("q2", "b1");
    c.request("q1", "a2");
    expect(sent).toEqual(["a1", "b1"]);
    c.close();
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual(["a1", "b1"]);
    expect(c.request("q3", "c1")).toBe(false);
  });

  it("sends every request with an interval of 0", () => {
    const sent: string[] = [];
    const c = new PushCoalescer<string>(0, (job) => sent.push(job));
    c.request("q1", "a");
    c.request("q1", "b");
    expect(sent).toEqual(["a", "b"]);
  });
});
