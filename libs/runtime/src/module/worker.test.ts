import { afterEach, describe, expect, it, vi } from "vitest";
import type { Bus, BusMessage, ConsumerOptions, MessageHandler } from "../bus/types.js";
import { consumerWorker, intervalWorker, outboxRelayWorker } from "./worker.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("intervalWorker", () => {
  it("runs once per interval from start, keeps going after a failed run, and not after stop", async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let runs = 0;
    const worker = intervalWorker("sweep", {
      intervalMs: 1000,
      run: async () => {
        runs += 1;
        if (runs === 2) throw new Error("database away");
      },
      onError: (error) => errors.push(error),
    });
    expect(worker.name).toBe("sweep");
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(0);
    worker.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(runs).toBe(0);
    await vi.advanceTimersByTimeAsync(2001);
    expect(runs).toBe(3);
    expect(errors).toEqual([new Error("database away")]);
    worker.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(3);
  });

  it("refuses an interval that is not positive", () => {
    const options = { intervalMs: 0, run: async () => {}, onError: () => {} };
    expect(() => intervalWorker("never", options)).toThrow("never: intervalMs must be positive");
  });
});

describe("consumerWorker", () => {
  it("subscribes with its options on start and stops the subscription on stop", async () => {
    const calls: { options: ConsumerOptions; handler: MessageHandler }[] = [];
    let stopped = 0;
    const bus: Pick<Bus, "consume"> = {
      async consume(options, handler) {
        calls.push({ options, handler });
        return {
          async stop() {
            stopped += 1;
          },
        };
      },
    };
    const handled: string[] = [];
    const handler: MessageHandler = async (msg: BusMessage) => void handled.push(msg.subject);
    const worker = consumerWorker("queue-deleted consumer", bus, { stream: "S", durable: "d" }, handler);
    await worker.stop();
    expect(stopped).toBe(0);
    await worker.start();
    expect(calls.map((c) => c.options)).toEqual([{ stream: "S", durable: "d" }]);
    expect(calls[0]?.handler).toBe(handler);
    await worker.stop();
    await worker.stop();
    expect(stopped).toBe(1);
  });
});

describe("outboxRelayWorker", () => {
  function relay() {
    const events: string[] = [];
    return { events, start: () => void events.push("start"), stop: async () => void events.push("stop") };
  }

  it("starts the relay at once without a delay", async () => {
    const r = relay();
    const worker = outboxRelayWorker(r);
    expect(worker.name).toBe("outbox relay");
    await worker.start();
    expect(r.events).toEqual(["start"]);
    await worker.stop();
    expect(r.events).toEqual(["start", "stop"]);
  });

  it("starts the relay after the delay, and never when stopped before it", async () => {
    vi.useFakeTimers();
    const late = relay();
    const worker = outboxRelayWorker(late, { startDelayMs: 500 });
    await worker.start();
    await vi.advanceTimersByTimeAsync(499);
    expect(late.events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(late.events).toEqual(["start"]);
    const cancelled = relay();
    const early = outboxRelayWorker(cancelled, { startDelayMs: 500 });
    await early.start();
    await early.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(cancelled.events).toEqual(["stop"]);
  });
});
