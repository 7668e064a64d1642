import { auth, delivery, queue } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { describe, expect, it } from "vitest";
import { startHomeserver } from "../src/index.js";

describe("startHomeserver", () => {
  it("serves AS, DS and QS of its domain on loopback and stops cleanly", async () => {
    const hs = await startHomeserver({ domain: "harness.example" });
    const channels = [hs.addresses.auth, hs.addresses.delivery, hs.addresses.queue].map((a) =>
      createChannel(a),
    );
    try {
      const [a, d, q] = channels as [
        ReturnType<typeof createChannel>,
        ReturnType<typeof createChannel>,
        ReturnType<typeof createChannel>,
      ];
      const as = createServiceClient(auth.AuthServiceService, a);
      const ds = createServiceClient(delivery.DeliveryServiceService, d);
      const qs = createServiceClient(queue.QueueServiceService, q);
      const creds = await as.getAsCredentials({ domain: "" });
      expect(creds.domain).toBe("harness.example");
      expect(creds.asCredentials.length).toBeGreaterThan(0);
      const { groupId } = await ds.requestGroupId({});
      expect(groupId?.domain).toBe("harness.example");
      const keys = await qs.getQueueConfigEncryptionKey({});
      expect(keys.keys.some((k) => k.current)).toBe(true);
    } finally {
      for (const c of channels) c.close();
      await hs.stop();
    }
  });

  it("keeps two homeservers apart", async () => {
    const [one, two] = await Promise.all([
      startHomeserver({ domain: "one.example" }),
      startHomeserver({ domain: "two.example" }),
    ]);
    try {
      expect(one.streams.fanOut).not.toBe(two.streams.fanOut);
      expect(one.addresses.auth).not.toBe(two.addresses.auth);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
    }
  });
});
