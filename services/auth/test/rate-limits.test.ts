import { Metadata, status } from "@grpc/grpc-js";
import { handleHash, randomBytes } from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import type { GrpcCallError } from "@phoenix/runtime/grpc";
import { createTestDatabase } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { authMigrationsFolder } from "../src/service.js";
import {
  expectStatus,
  type Harness,
  newClient,
  queryNumber,
  registerRequest,
  registerUser,
  startAuth,
} from "./support/harness.js";

const Reason = common.ErrorReason;

/** Call options of a request the edge gateway (trusted proxy 127.0.0.1) forwards for `client`. */
function forwardedFor(client: string) {
  const metadata = new Metadata();
  metadata.set("x-forwarded-for", client);
  return { metadata };
}

function expectRateLimit(error: GrpcCallError, variable: string): void {
  expect(error.statusMessage).toContain(variable);
  expect(error.statusMessage).toContain("rate limit exceeded");
  const detail = error.details.find((d) => d.typeUrl.endsWith("phoenix.common.v1.ErrorDetail"));
  expect(detail && common.ErrorDetail.decode(detail.value).reason).toBe(Reason.ERROR_REASON_RATE_LIMIT);
}

describe("per-caller rate limits", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("limits CheckHandleExists per caller, per forwarded client behind a trusted proxy, and refills", async () => {
    h = await startAuth({ AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "3", AS_TRUSTED_PROXIES: "127.0.0.1" });
    const ask = (options?: { metadata: Metadata }) =>
      h!.as.checkHandleExists({ handleHash: handleHash("nobody"), domain: "" }, options);
    for (let i = 0; i < 3; i++) expect((await ask()).exists).toBe(false);
    expectRateLimit(
      await expectStatus(ask(), status.RESOURCE_EXHAUSTED),
      "AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE",
    );
    // Another client behind the same gateway has its own budget; a spoofed hop left of it does not help.
    for (let i = 0; i < 3; i++) await ask(forwardedFor("198.51.100.7"));
    await expectStatus(ask(forwardedFor("198.51.100.7")), status.RESOURCE_EXHAUSTED);
    await expectStatus(ask(forwardedFor("203.0.113.9, 198.51.100.7")), status.RESOURCE_EXHAUSTED);
    h.advance(60_000);
    expect((await ask()).exists).toBe(false);
  });

  it("ignores x-forwarded-for from a peer that is not a trusted proxy", async () => {
    h = await startAuth({ AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "2" });
    const ask = (client: string) =>
      h!.as.checkHandleExists({ handleHash: handleHash("nobody"), domain: "" }, forwardedFor(client));
    await ask("198.51.100.1");
    await ask("198.51.100.2");
    await expectStatus(ask("198.51.100.3"), status.RESOURCE_EXHAUSTED);
  });

  it("limits connection package fetches by user id and by handle together", async () => {
    h = await startAuth({ AS_CALLER_RATE_PACKAGES_PER_MINUTE: "2" });
    const alice = await registerUser(h);
    // No packages published: NOT_FOUND / empty answers still count against the caller.
    await h.as.getConnectionPackages({ userId: alice.wireId.user });
    await expectStatus(
      h.as.getHandleConnectionPackage({ handleHash: handleHash("nobody"), domain: "" }),
      status.NOT_FOUND,
    );
    expectRateLimit(
      await expectStatus(
        h.as.getConnectionPackages({ userId: alice.wireId.user }),
        status.RESOURCE_EXHAUSTED,
      ),
      "AS_CALLER_RATE_PACKAGES_PER_MINUTE",
    );
  });

  it("limits offers per caller across target queues", async () => {
    h = await startAuth({ AS_CALLER_RATE_ENQUEUE_PER_MINUTE: "2" });
    const targets = [await registerUser(h), await registerUser(h), await registerUser(h)];
    const offer = randomBytes(64);
    await h.as.enqueueConnectionOffer({ clientId: targets[0]!.wireId, connectionOffer: offer });
    await h.as.enqueueConnectionOffer({ clientId: targets[1]!.wireId, connectionOffer: offer });
    expectRateLimit(
      await expectStatus(
        h.as.enqueueConnectionOffer({ clientId: targets[2]!.wireId, connectionOffer: offer }),
        status.RESOURCE_EXHAUSTED,
      ),
      "AS_CALLER_RATE_ENQUEUE_PER_MINUTE",
    );
    await expectStatus(
      h.as.enqueueHandleConnectionOffer({
        handleHash: handleHash("nobody"),
        domain: "",
        connectionOffer: offer,
      }),
      status.RESOURCE_EXHAUSTED,
    );
  });

  it("limits CreateHandle per caller before any decoding (each costs a memory-hard hash)", async () => {
    h = await startAuth({ AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE: "1" });
    await expectStatus(h.as.createHandle({ signed: undefined }), status.INVALID_ARGUMENT);
    expectRateLimit(
      await expectStatus(h.as.createHandle({ signed: undefined }), status.RESOURCE_EXHAUSTED),
      "AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE",
    );
  });

  it("limits registrations per source address; nothing is stored for a refused one", async () => {
    h = await startAuth({ AS_SOURCE_RATE_REGISTER_PER_HOUR: "2", AS_TRUSTED_PROXIES: "127.0.0.1" });
    await registerUser(h);
    await registerUser(h);
    const third = newClient();
    expectRateLimit(
      await expectStatus(h.as.registerUser(await registerRequest(third, h.now())), status.RESOURCE_EXHAUSTED),
      "AS_SOURCE_RATE_REGISTER_PER_HOUR",
    );
    // The same user id registers from another address (through the gateway): the refused attempt
    // left nothing behind (else ALREADY_EXISTS).
    const registered = await h.as.registerUser(
      await registerRequest(third, h.now()),
      forwardedFor("2001:db8::17"),
    );
    expect(registered.clientCredential.length).toBeGreaterThan(0);
  });
});

describe("the per-queue enqueue limit", () => {
  it("is shared by every replica on one database", async () => {
    const db = await createTestDatabase({ migrationsFolder: authMigrationsFolder });
    const env = { AS_ENQUEUE_RATE_PER_MINUTE: "3" };
    const replicas: Harness[] = [];
    try {
      replicas.push(await startAuth(env, { database: db }), await startAuth(env, { database: db }));
      const [a, b] = replicas as [Harness, Harness];
      const target = await registerUser(a);
      const offer = () => ({ clientId: target.wireId, connectionOffer: randomBytes(32) });
      await a.as.enqueueConnectionOffer(offer());
      await b.as.enqueueConnectionOffer(offer());
      await a.as.enqueueConnectionOffer(offer());
      expectRateLimit(
        await expectStatus(b.as.enqueueConnectionOffer(offer()), status.RESOURCE_EXHAUSTED),
        "AS_ENQUEUE_RATE_PER_MINUTE",
      );
      await expectStatus(a.as.enqueueConnectionOffer(offer()), status.RESOURCE_EXHAUSTED);
      // A refused offer changed nothing: the queue holds its init message and the three offers.
      expect(
        await queryNumber(
          db.db,
          sql`SELECT count(*) FROM queue_messages m JOIN connection_queues q USING (queue_id)
              WHERE q.user_uuid = ${target.clientId.userId.uuid}`,
        ),
      ).toBe(4);
    } finally {
      for (const replica of replicas) await replica.close();
      await db.close();
    }
  });
});

describe("limits shared by replicas (kept in the AS database)", () => {
  const replicas: Harness[] = [];
  afterEach(async () => {
    while (replicas.length > 0) await replicas.pop()?.close();
  });

  async function twoReplicas(env: Record<string, string>) {
    const db = await createTestDatabase({ migrationsFolder: authMigrationsFolder });
    const a = await startAuth(env, { database: db });
    replicas.push(a);
    const b = await startAuth(env, { database: db });
    replicas.push(b);
    // Closed after both replicas (afterEach pops b, then a, then this).
    replicas.unshift({ close: () => db.close() } as Harness);
    return [a, b] as const;
  }

  it("limits GetUserProfile per caller, across two replicas", async () => {
    const [a, b] = await twoReplicas({ AS_CALLER_RATE_PROFILE_PER_MINUTE: "3" });
    const alice = await registerUser(a);
    const ask = (h: Harness) => h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: randomBytes(32) });
    await expectStatus(ask(a), status.NOT_FOUND);
    await expectStatus(ask(b), status.NOT_FOUND);
    await expectStatus(ask(a), status.NOT_FOUND);
    expectRateLimit(
      await expectStatus(ask(b), status.RESOURCE_EXHAUSTED),
      "AS_CALLER_RATE_PROFILE_PER_MINUTE",
    );
    await expectStatus(ask(a), status.RESOURCE_EXHAUSTED);
    a.advance(60_000);
    await expectStatus(ask(a), status.NOT_FOUND);
  });

  it("holds a per-caller limit across two replicas (a caller cannot multiply it by the replica count)", async () => {
    const [a, b] = await twoReplicas({ AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "2" });
    const ask = (h: Harness) => h.as.checkHandleExists({ handleHash: handleHash("nobody"), domain: "" });
    await ask(a);
    await ask(b);
    await expectStatus(ask(a), status.RESOURCE_EXHAUSTED);
    await expectStatus(ask(b), status.RESOURCE_EXHAUSTED);
  });

  it("limits package fetches per target user whoever the callers are, on any replica", async () => {
    const [a, b] = await twoReplicas({
      AS_TARGET_RATE_PACKAGES_PER_HOUR: "3",
      AS_CALLER_RATE_PACKAGES_PER_MINUTE: "100",
      AS_TRUSTED_PROXIES: "127.0.0.1",
    });
    const alice = await registerUser(a);
    const bob = await registerUser(a);
    const fetch = (h: Harness, caller: string, user = alice) =>
      h.as.getConnectionPackages({ userId: user.wireId.user }, forwardedFor(caller));
    // Three different callers, each far below its own limit, use up Alice's budget together.
    await fetch(a, "198.51.100.1");
    await fetch(b, "198.51.100.2");
    await fetch(a, "198.51.100.3");
    expectRateLimit(
      await expectStatus(fetch(b, "198.51.100.4"), status.RESOURCE_EXHAUSTED),
      "AS_TARGET_RATE_PACKAGES_PER_HOUR",
    );
    // Another user is unaffected; Alice's budget refills over the hour.
    await fetch(a, "198.51.100.4", bob);
    a.advance(20 * 60_000);
    await fetch(a, "198.51.100.5");
    await expectStatus(fetch(a, "198.51.100.6"), status.RESOURCE_EXHAUSTED);
  });

  it("limits handle package fetches per target handle", async () => {
    const [a] = await twoReplicas({ AS_TARGET_RATE_PACKAGES_PER_HOUR: "2", AS_TRUSTED_PROXIES: "127.0.0.1" });
    const ask = (caller: string, handle = "nobody") =>
      a.as.getHandleConnectionPackage({ handleHash: handleHash(handle), domain: "" }, forwardedFor(caller));
    await expectStatus(ask("198.51.100.1"), status.NOT_FOUND);
    await expectStatus(ask("198.51.100.2"), status.NOT_FOUND);
    expectRateLimit(
      await expectStatus(ask("198.51.100.3"), status.RESOURCE_EXHAUSTED),
      "AS_TARGET_RATE_PACKAGES_PER_HOUR",
    );
    await expectStatus(ask("198.51.100.3", "somebody"), status.NOT_FOUND);
  });
});
