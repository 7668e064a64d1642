import { Metadata, status } from "@grpc/grpc-js";
import { randomBytes } from "@phoenix/crypto";
import { common, errorDetailFromMetadata, queue } from "@phoenix/proto";
import { callFailure } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { qsUsers } from "../src/store/schema.js";
import { addPackage } from "./support/add-packages.js";
import { Harness } from "./support/harness.js";

const HOUR = 3600_000;
let h: Harness;
let clockOffsetMs = 0;
beforeAll(async () => {
  h = await Harness.start({
    now: () => Date.now() + clockOffsetMs,
    // The test connects from 127.0.0.1 and plays an edge gateway naming different callers.
    config: {
      QS_TRUSTED_PROXIES: ["127.0.0.1"],
      QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN: 3,
      QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: 5,
      QS_RATE_CREATE_USER_PER_CALLER: 3,
    },
  });
});
afterAll(async () => {
  await h?.stop();
});

function from(address: string): { metadata: Metadata } {
  const metadata = new Metadata();
  metadata.set("x-forwarded-for", `${address}, 127.0.0.1`);
  return { metadata };
}

function expectRateLimited(err: { code: number; message: string; metadata: Metadata }, variable: string) {
  expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
  expect(err.message).toContain(variable);
  const detail = errorDetailFromMetadata(err.metadata);
  expect(detail?.reason).toBe(common.ErrorReason.ERROR_REASON_RATE_LIMIT);
  expect(detail?.detail?.$case).toBe("retry");
}

describe("rate limits", () => {
  it("limits FetchAddPackages per friendship token, whoever asks, until the bucket refills", async () => {
    const alice = await h.newUser();
    await h.client.publishAddPackages({
      signed: await alice.signed(queue.PublishAddPackagesTbs, "publishAddPackages", {
        addPackages: [await addPackage(alice, { lastResort: true })],
      }),
    });
    const fetch = (caller: string) =>
      h.client.fetchAddPackages({ friendshipToken: alice.user.friendshipToken, domain: "" }, from(caller));
    for (let i = 0; i < 3; i++) expect((await fetch("10.0.0.1")).addPackages).toHaveLength(1);
    expectRateLimited(await callFailure(fetch("10.0.0.2")), "QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN");
    clockOffsetMs += HOUR;
    expect((await fetch("10.0.0.2")).addPackages).toHaveLength(1);
    clockOffsetMs = 0; // the next tests sign requests with the real clock
  });

  it("limits FetchAddPackages per caller across tokens; other callers are unaffected", async () => {
    const probe = (caller: string) =>
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: "" }, from(caller));
    for (let i = 0; i < 5; i++) expect((await callFailure(probe("10.0.1.1"))).code).toBe(status.NOT_FOUND);
    expectRateLimited(await callFailure(probe("10.0.1.1")), "QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER");
    expect((await callFailure(probe("10.0.1.2"))).code).toBe(status.NOT_FOUND);
  });

  it("limits CreateUser per caller; the refused request creates nothing", async () => {
    for (let i = 0; i < 3; i++) await h.newUser({ metadata: from("10.0.2.1").metadata });
    const refused = await callFailure(h.newUser({ metadata: from("10.0.2.1").metadata }));
    expectRateLimited(refused, "QS_RATE_CREATE_USER_PER_CALLER");
    const other = await h.newUser({ metadata: from("10.0.2.2").metadata });
    expect((await other.dequeue(0n)).messages).toHaveLength(1);
    const users = await h.db.db.select({ id: qsUsers.userId }).from(qsUsers);
    expect(users).toHaveLength(5); // alice, three from 10.0.2.1, one from 10.0.2.2
  });
});
