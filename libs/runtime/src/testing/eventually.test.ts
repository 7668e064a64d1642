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
    let calls = 0;
    const waiting = eventually(
      () => {
        calls++;
        return false;
      },
      { timeoutMs: 60, intervalMs: 10, message: "the backlog" },
    );
    await expect(waiting).rejects.toThrow(EventuallyTimeoutError);
    await expect(waiting).rejects.toThrow("timed out after 60 ms waiting for the backlog");
    // Tried more than once, and not in a busy loop.
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThan(20);
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
    await expect(waiting).rejects.toThrow(
      /^timed out after 30 ms waiting for the count to reach 100 \(last: [2-9]\)$/,
    );
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
