import { randomBytes } from "node:crypto";
import { createEmbeddedBus, outboundLaneDurable } from "@phoenix/runtime/bus";
import {
  createMetrics,
  parsePrometheusText,
  registerBusMetrics,
  sampleValue,
} from "@phoenix/runtime/metrics";
import { createTestPglite } from "@phoenix/runtime/testing";
import { describe, expect, it } from "vitest";
import { registerLaneMetrics } from "./lane-metrics.js";

describe("outbound lane metrics", () => {
  it("report what waits for each peer with a lane, by domain, beside the bus lag of the same read", async () => {
    const testDb = await createTestPglite();
    const bus = await createEmbeddedBus({ db: testDb.db });
    try {
      const stream = `OUT_${randomBytes(3).toString("hex")}`;
      const peers = ["b.example", "c.example"];
      const laneOf = (peer: string) => ({ stream, durable: outboundLaneDurable("fg", peer) });
      await bus.ensureStream({
        name: stream,
        subjects: ["out.>"],
        retention: "interest",
        durables: peers.map((peer) => ({
          name: laneOf(peer).durable,
          filterSubject: `out.${peer.replaceAll(".", "_")}`,
        })),
      });
      const { registry } = createMetrics({ service: "federation-gateway", defaultMetrics: false });
      registerBusMetrics(registry, bus);
      // Only b.example has a lane on this replica (c.example's belongs to no one here).
      registerLaneMetrics(registry, bus, { peers: ["b.example"], laneOf });
      for (let i = 0; i < 3; i++) await bus.publish("out.b_example", new Uint8Array([i]), { id: `b${i}` });
      await bus.publish("out.c_example", new Uint8Array([9]), { id: "c0" });

      const parsed = parsePrometheusText(await registry.metrics());
      expect(sampleValue(parsed, "federation_outbound_queue_messages", { peer: "b.example" })).toBe(3);
      expect(
        sampleValue(parsed, "federation_outbound_oldest_age_seconds", { peer: "b.example" }),
      ).toBeGreaterThanOrEqual(0);
      expect(
        sampleValue(parsed, "federation_outbound_queue_messages", { peer: "c.example" }),
      ).toBeUndefined();
      // The runtime's gauges see both durables; the gateway's name only the peers it delivers to.
      expect(
        sampleValue(parsed, "bus_consumer_pending_messages", {
          stream,
          consumer: laneOf("c.example").durable,
        }),
      ).toBe(1);
      expect(sampleValue(parsed, "metrics_collect_failures_total", { collector: "bus_lag" })).toBe(0);
    } finally {
      await bus.close();
      await testDb.close();
    }
  });
});
