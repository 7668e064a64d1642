import { toHex } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fillAddPackageExpiry } from "../src/consumer/add-package-expiry.js";
import { addPackage } from "./support/add-packages.js";
import { Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

const HOUR = 3600_000;
let clockOffsetMs = 0;
let h: Harness;

beforeAll(async () => {
  h = await Harness.start({
    config: { QS_ADD_PACKAGE_LIFETIME: 10 * HOUR },
    now: () => Date.now() + clockOffsetMs,
  });
});
afterAll(async () => {
  await h?.stop();
});

/** A new user whose requests follow the QS's (moved) clock. */
async function user(): Promise<TestClient> {
  const client = await h.newUser();
  client.clock = () => new Date(Date.now() + clockOffsetMs);
  return client;
}

async function publish(client: TestClient, packages: Uint8Array[]): Promise<void> {
  await h.client.publishAddPackages({
    signed: await client.signed(queue.PublishAddPackagesTbs, "publishAddPackages", { addPackages: packages }),
  });
}

async function fetch(client: TestClient): Promise<string[]> {
  const res = await h.client.fetchAddPackages({ friendshipToken: client.user.friendshipToken, domain: "" });
  return res.addPackages.map(toHex);
}

async function storedPackages(client: TestClient): Promise<number> {
  const result = (await h.db.db.execute(
    sql`select count(*)::int as n from qs_add_packages where client_id = ${client.clientId}`,
  )) as unknown as { rows: { n: number }[] };
  return result.rows[0]?.n ?? 0;
}

describe("AddPackage expiry", () => {
  it("never hands out a package past its KeyPackage lifetime or QS_ADD_PACKAGE_LIFETIME, and the sweep deletes it", async () => {
    clockOffsetMs = 0;
    const alice = await user();
    // An ordinary package whose KeyPackage lives 2 hours, a last-resort one living 90 days (capped at 10 h).
    const shortLived = await addPackage(alice, { lifetimeSeconds: 2 * 3600 });
    const lastResort = await addPackage(alice, { lastResort: true });
    await publish(alice, [shortLived, lastResort]);
    expect(await h.service.sweep()).toMatchObject({ addPackages: 0 });

    // Three hours on, the ordinary package's KeyPackage has expired: the last-resort one is handed out instead.
    clockOffsetMs = 3 * HOUR;
    expect(await fetch(alice)).toEqual([toHex(lastResort)]);
    expect(await storedPackages(alice)).toBe(2);
    expect((await h.service.sweep()).addPackages).toBeGreaterThanOrEqual(1);
    expect(await storedPackages(alice)).toBe(1);

    // Past the QS's cap the last-resort package is not handed out either; the client is left out.
    clockOffsetMs = 11 * HOUR;
    expect(await fetch(alice)).toEqual([]);
    expect((await h.service.sweep()).addPackages).toBeGreaterThanOrEqual(1);
    expect(await storedPackages(alice)).toBe(0);

    // A fresh publication is handed out again.
    const fresh = await addPackage(alice, { lastResort: true });
    await publish(alice, [fresh]);
    expect(await fetch(alice)).toEqual([toHex(fresh)]);
  });

  it("hands out unexpired packages of the other clients when one client has only expired ones", async () => {
    clockOffsetMs = 0;
    const bob = await user();
    const tablet = await bob.addClient();
    tablet.clock = bob.clock;
    const bobLast = await addPackage(bob, { lastResort: true, lifetimeSeconds: 2 * 3600 });
    const tabletLast = await addPackage(tablet, { lastResort: true });
    await publish(bob, [bobLast]);
    await publish(tablet, [tabletLast]);
    clockOffsetMs = 3 * HOUR;
    expect(await fetch(bob)).toEqual([toHex(tabletLast)]);
  });

  it("gives packages stored before expiry existed one at start, and hands none out before", async () => {
    clockOffsetMs = 0;
    const carol = await user();
    const pkg = await addPackage(carol, { lastResort: true, lifetimeSeconds: 5 * 3600 });
    await publish(carol, [pkg]);
    await h.db.db.execute(
      sql`update qs_add_packages set expires_at = null where client_id = ${carol.clientId}`,
    );
    expect(await fetch(carol)).toEqual([]);

    const filled = await fillAddPackageExpiry(h.db.db, h.service.ctx.storage, {
      now: Date.now(),
      lifetimeMs: 10 * HOUR,
    });
    expect(filled).toBeGreaterThanOrEqual(1);
    expect(await fetch(carol)).toEqual([toHex(pkg)]);
    // The filled expiry is the KeyPackage's own notAfter (5 h, floored to the hour), not the 10 h cap.
    clockOffsetMs = 6 * HOUR;
    expect(await fetch(carol)).toEqual([]);
  });
});
