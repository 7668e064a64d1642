import { describe, expect, it } from "vitest";
import { EventuallyTimeoutError, eventually } from "./eventually.js";

describe("eventually", () => {
  it("resolves with the first value that is not false, null or undefined", async () => {
    const answers: unknown[] = [false, undefined, null, 0, "late"];
    let calls = 0;
    const value = await eventually(() => answers[calls++], { intervalMs: 1 });
    // 0 is a value, not "not yet": a count of zero can be what a test waits for.
    expect(value).toBe(0);
    expect(calls).toBe(4);
  });

  it("awaits an asynchronous check", async () => {
    let calls = 0;
    const value = await eventually(async () => (++calls >= 3 ? `after ${calls}` : undefined), {
      intervalMs: 1,
    });
    expect(value).toBe("after 3");
  });

  it("gives up after the timeout with the awaited thing named in the error", async () => {
    const calls: number[] = [];
    const waiting = eventually(
      () => {
        calls.push(performance.now());
        return false;
      },
      { timeoutMs: 100, intervalMs: 20, message: "the backlog" },
    );
    await expect(waiting).rejects.toThrow(EventuallyTimeoutError);
    await expect(waiting).rejects.toThrow("timed out after 100 ms waiting for the backlog");
    expect(calls.length).toBeGreaterThan(0);
    // Never a busy loop: calls are about an interval apart (the last one may come sooner, at the
    // deadline). Node's timers may fire a millisecond or two early against performance.now(), so
    // the bound is half the interval: a busy loop would call again within microseconds.
    for (let i = 1; i < calls.length - 1; i++) {
      expect((calls[i] ?? 0) - (calls[i - 1] ?? 0)).toBeGreaterThanOrEqual(10);
    }
  });

  it("describes the last state seen when the message is a function", async () => {
    let seen = 0;
    const waiting = eventually(
      () => {
        seen++;
        return false;
      },
      {
        timeoutMs: 30,
        intervalMs: 10,
        message: () => `the count to reach 100 (last: ${seen})`,
      },
    );
    const error = await waiting.catch((e: unknown) => e);
    // The message was built when the wait gave up, from the state after the last call.
    expect(error).toBeInstanceOf(EventuallyTimeoutError);
    expect((error as Error).message).toBe(
      `timed out after 30 ms waiting for the count to reach 100 (last: ${seen})`,
    );
    expect(seen).toBeGreaterThan(0);
  });

  it("does not retry a check that throws", async () => {
    let calls = 0;
    const failing = eventually(() => {
      calls++;
      throw new Error("broken");
    });
    await expect(failing).rejects.toThrow("broken");
    expect(calls).toBe(1);
  });
});
