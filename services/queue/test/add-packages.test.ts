import { status } from "@grpc/grpc-js";
import { randomBytes, toHex } from "@phoenix/crypto";
import { common, errorDetailFromMetadata, queue } from "@phoenix/proto";
import { callFailure } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addPackage } from "./support/add-packages.js";
import { Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

let h: Harness;
beforeAll(async () => {
  h = await Harness.start();
});
afterAll(async () => {
  await h?.stop();
});

async function publish(client: TestClient, packages: Uint8Array[]): Promise<void> {
  await h.client.publishAddPackages({
    signed: await client.signed(queue.PublishAddPackagesTbs, "publishAddPackages", { addPackages: packages }),
  });
}

async function fetch(client: TestClient): Promise<string[]> {
  const res = await h.client.fetchAddPackages({ friendshipToken: client.user.friendshipToken, domain: "" });
  return res.addPackages.map(toHex).sort();
}

describe("AddPackages", () => {
  it("hands out one per client, consuming ordinary ones and keeping the last resort", async () => {
    const alice = await h.newUser();
    const phone = await alice.addClient();
    const [a1, a2, aLast] = [
      await addPackage(alice),
      await addPackage(alice),
      await addPackage(alice, { lastResort: true }),
    ];
    const phoneLast = await addPackage(phone, { lastResort: true });
    await publish(alice, [a1, a2, aLast]);
    await publish(phone, [phoneLast]);

    const rounds = [await fetch(alice), await fetch(alice), await fetch(alice), await fetch(alice)];
    const one = (...p: Uint8Array[]) => p.map(toHex).sort();
    expect(rounds[0]).toEqual(one(a1, phoneLast));
    expect(rounds[1]).toEqual(one(a2, phoneLast));
    expect(rounds[2]).toEqual(one(aLast, phoneLast));
    expect(rounds[3]).toEqual(one(aLast, phoneLast));
  });

  it("replaces earlier AddPackages on publish", async () => {
    const alice = await h.newUser();
    await publish(alice, [await addPackage(alice), await addPackage(alice, { lastResort: true })]);
    const fresh = await addPackage(alice, { lastResort: true });
    await publish(alice, [fresh]);
    expect(await fetch(alice)).toEqual([toHex(fresh)]);
  });

  it("refuses a publish without a last-resort KeyPackage and keeps the previous ones", async () => {
    const alice = await h.newUser();
    const kept = await addPackage(alice, { lastResort: true });
    await publish(alice, [kept]);
    const err = await callFailure(publish(alice, [await addPackage(alice), await addPackage(alice)]));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.statusMessage).toContain("last_resort");
    expect(await fetch(alice)).toEqual([toHex(kept)]);
  });

  it("refuses KeyPackages that are forged, expired or aimed at another client's queue", async () => {
    const alice = await h.newUser();
    const bob = await h.newUser();
    const valid = await addPackage(alice, { lastResort: true });
    const forged = valid.slice();
    forged[forged.length - 140] = (forged[forged.length - 140] ?? 0) ^ 0xff; // inside the KeyPackage signature
    const cases: [Uint8Array, common.ErrorReason][] = [
      [forged, common.ErrorReason.ERROR_REASON_INVALID_MLS],
      [
        await addPackage(alice, { lastResort: true, lifetimeSeconds: -120 }),
        common.ErrorReason.ERROR_REASON_EXPIRED,
      ],
      [
        await addPackage(alice, { lastResort: true, queueOf: bob }),
        common.ErrorReason.ERROR_REASON_MALFORMED,
      ],
      [randomBytes(200), common.ErrorReason.ERROR_REASON_MALFORMED],
    ];
    for (const [bytes, reason] of cases) {
      const err = await callFailure(publish(alice, [bytes]));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(errorDetailFromMetadata(err.metadata)?.reason).toBe(reason);
    }
    const none = await h.client.fetchAddPackages({ friendshipToken: alice.user.friendshipToken, domain: "" });
    expect(none.addPackages).toEqual([]);
  });

  it("answers NOT_FOUND for an unknown token and INVALID_ARGUMENT for a malformed one", async () => {
    expect(
      (await callFailure(h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: "" }))).code,
    ).toBe(status.NOT_FOUND);
    expect(
      (await callFailure(h.client.fetchAddPackages({ friendshipToken: randomBytes(31), domain: "" }))).code,
    ).toBe(status.INVALID_ARGUMENT);
  });

  it("refuses more than 100 AddPackages and one larger than 16 KiB with RESOURCE_EXHAUSTED", async () => {
    const alice = await h.newUser();
    const many = Array.from({ length: 101 }, () => new Uint8Array(10));
    expect((await callFailure(publish(alice, many))).code).toBe(status.RESOURCE_EXHAUSTED);
    expect((await callFailure(publish(alice, [new Uint8Array(16 * 1024 + 1)]))).code).toBe(
      status.RESOURCE_EXHAUSTED,
    );
  });
});
