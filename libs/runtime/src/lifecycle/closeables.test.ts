import { describe, expect, it } from "vitest";
import { closeAll } from "./closeables.js";

describe("closeAll", () => {
  it("closes in reverse order and keeps going past failures and hangs", async () => {
    const order: string[] = [];
    const failed = await closeAll(
      [
        { name: "database", resource: { close: async () => void order.push("database") } },
        { name: "bus", resource: { close: () => Promise.reject(new Error("connection lost")) } },
        { name: "stuck", resource: { stop: () => new Promise(() => {}) } },
        { name: "relay", resource: { stop: () => void order.push("relay") } },
        { name: "timer", resource: () => void order.push("timer") },
      ],
      { timeoutMs: 50 },
    );
    expect(order).toEqual(["timer", "relay", "database"]);
    expect(failed).toEqual(["stuck", "bus"]);
  });

  it("reports a synchronous throw as a failure", async () => {
    const failed = await closeAll(
      [
        {
          name: "boom",
          resource: () => {
            throw new Error("boom");
          },
        },
      ],
      { timeoutMs: 50 },
    );
    expect(failed).toEqual(["boom"]);
  });
});
