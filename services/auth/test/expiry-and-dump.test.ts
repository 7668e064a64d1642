import { execFileSync } from "node:child_process";
import { status } from "@grpc/grpc-js";
import {
  ClientCredential,
  createConnectionPackage,
  createHandleConnectionPackage,
  expirationFrom,
  HpkeKeyPair,
  handleHash,
  randomBytes,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addClient,
  expectStatus,
  type Harness,
  queryNumber,
  registerUser,
  S,
  sign,
  signAs,
  startAuth,
  type TestClient,
} from "./support/harness.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function createHandle(h: Harness, handle: string, key: SigningKey, queueKey: HpkeKeyPair) {
  const hash = handleHash(handle);
  await h.as.createHandle({
    signed: await sign(
      auth.CreateHandleTbs,
      S.createHandle,
      {
        handle,
        handleHash: hash,
        verifyingKey: key.publicKey,
        connectionQueueEncryptionKey: queueKey.publicKey.bytes,
      },
      key,
      { $case: "handleHash", value: hash },
      h.now(),
    ),
  });
  return hash;
}

describe("expiry jobs", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth({
      AS_HANDLE_LIFETIME: "2h",
      AS_CLIENT_INACTIVITY_LIMIT: `${60 * 24}h`,
      AS_CONNECTION_PACKAGE_LIFETIME: "3h",
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("drops expired handles, stale packages, inactive clients and old request ids", async () => {
    const alice = await registerUser(h);
    await h.as.publishConnectionPackages({
      signed: await signAs(
        alice,
        auth.PublishConnectionPackagesTbs,
        S.publishConnectionPackages,
        {
          packages: [
            {
              connectionPackage: createConnectionPackage({
                clientKey: alice.key,
                clientCredential: ClientCredential.decode(alice.credential),
                lifetime: expirationFrom(h.now().getTime() - 1000, 7 * DAY),
              }).bytes,
              lastResort: true,
            },
          ],
        },
        h.now(),
      ),
    });
    const hash = await createHandle(
      h,
      `exp_${toHex(randomBytes(3))}`,
      SigningKey.generate(),
      HpkeKeyPair.generate(),
    );
    const count = (table: string) => queryNumber(h.db.db, sql.raw(`SELECT count(*) FROM ${table}`));
    expect(await count("phoenix_runtime.seen_requests")).toBeGreaterThan(0);

    // Nothing is due yet.
    const early = await h.service.expiry.runOnce();
    expect(early).toMatchObject({ handles: 0, connectionPackages: 0, clients: 0, users: 0 });

    // Four hours later: the handle (2 h) and the package (3 h cap) are gone, the request ids too.
    h.advance(4 * HOUR);
    const later = await h.service.expiry.runOnce();
    expect(later?.handles).toBeGreaterThanOrEqual(1);
    expect(later?.connectionPackages).toBeGreaterThanOrEqual(1);
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM handles WHERE handle_hash = ${hash}`)).toBe(0);
    expect(
      await queryNumber(h.db.db, sql`SELECT count(*) FROM connection_queues WHERE handle_hash = ${hash}`),
    ).toBe(0);
    expect(await count("phoenix_runtime.seen_requests")).toBe(0);
    expect(await count("clients")).toBeGreaterThan(0);

    // Two inactive months later the client and its user are gone.
    h.advance(62 * DAY);
    const inactive = await h.service.expiry.runOnce();
    expect(inactive?.clients).toBeGreaterThanOrEqual(1);
    expect(inactive?.users).toBeGreaterThanOrEqual(1);
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM users WHERE user_uuid = ${alice.clientId.userId.uuid}`,
      ),
    ).toBe(0);
  });
});

describe("expired client credentials", () => {
  let h: Harness;
  beforeAll(async () => {
    // Inactivity alone would keep every client here for a year.
    h = await startAuth({ AS_CLIENT_INACTIVITY_LIMIT: "365d" });
  });
  afterAll(async () => {
    await h?.close();
  });

  const listClients = async (client: TestClient) =>
    h.as.listClients({
      signed: await signAs(
        client,
        auth.ListClientsTbs,
        S.listClients,
        { userId: client.wireId.user },
        h.now(),
      ),
    });
  const clientRows = (client: TestClient) =>
    queryNumber(h.db.db, sql`SELECT count(*) FROM clients WHERE user_uuid = ${client.clientId.userId.uuid}`);

  it("refuses a client whose credential expired and removes it (and its user) in the expiry job", async () => {
    // Credentials of the harness live 30 days.
    const alice = await registerUser(h);
    const phone = await addClient(h, alice);
    h.advance(20 * DAY);
    const bob = await registerUser(h);
    expect((await h.service.expiry.runOnce())?.expiredCredentials).toBe(0);

    // Day 31: alice's credentials expired, bob's (from day 20) did not.
    h.advance(11 * DAY);
    const refused = await expectStatus(listClients(alice), status.UNAUTHENTICATED);
    expect(refused.statusMessage).toContain("the client credential has expired");
    const report = await h.service.expiry.runOnce();
    expect(report?.expiredCredentials).toBeGreaterThanOrEqual(2);
    expect(report?.clients).toBe(0);
    expect(await clientRows(alice)).toBe(0);
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM users WHERE user_uuid = ${alice.clientId.userId.uuid}`,
      ),
    ).toBe(0);
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM connection_queues WHERE user_uuid = ${phone.clientId.userId.uuid}`,
      ),
    ).toBe(0);
    expect(await clientRows(bob)).toBe(1);
    expect((await listClients(bob)).clients).toHaveLength(1);
  });
});

describe("expired AS intermediates", () => {
  let h: Harness;
  beforeAll(async () => {
    // Defaults: intermediates live 365 days, a new one signs after 90.
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  const intermediates = (expired: boolean) =>
    queryNumber(
      h.db.db,
      expired
        ? sql`SELECT count(*) FROM as_credentials WHERE kind = 'intermediate' AND not_after < ${h.now()}`
        : sql`SELECT count(*) FROM as_credentials WHERE kind = 'intermediate' AND not_after >= ${h.now()}`,
    );

  it("deletes an intermediate past its notAfter in the expiry job; the current signer keeps signing", async () => {
    await registerUser(h);
    const first = await intermediates(false);
    expect(first).toBeGreaterThanOrEqual(1);
    // Day 100: a rotation made a second intermediate; nothing has expired.
    h.advance(100 * DAY);
    await registerUser(h);
    expect(await intermediates(false)).toBeGreaterThan(first);
    expect((await h.service.expiry.runOnce())?.intermediates).toBe(0);

    // Day 366: the first one expired (and every client credential it signed with it).
    h.advance(266 * DAY);
    expect(await intermediates(true)).toBeGreaterThanOrEqual(1);
    expect((await h.service.expiry.runOnce())?.intermediates).toBeGreaterThanOrEqual(1);
    expect(await intermediates(true)).toBe(0);
    const bob = await registerUser(h);
    expect(bob.credential.length).toBeGreaterThan(0);
  });

  it("drops revocations older than any credential they could concern, and audit rows past ADMIN_AUDIT_RETENTION", async () => {
    const at = (daysAgo: number) => new Date(h.now().getTime() - daysAgo * DAY).toISOString();
    // Defaults: intermediates live 365 days (the longest), so a revocation is kept 365 + 31 days;
    // audit rows 400 days.
    const stale = Buffer.from(randomBytes(32));
    const recent = Buffer.from(randomBytes(32));
    await h.db.db.execute(
      sql`INSERT INTO revoked_credentials (fingerprint, revoked_at) VALUES (${stale}, ${at(400)}), (${recent}, ${at(300)})`,
    );
    await h.db.db.execute(
      sql`INSERT INTO admin_audit (at, operator, authenticated, method, target, outcome)
          VALUES (${at(401)}, 'ops', true, 'old', '', 'ok'), (${at(10)}, 'ops', true, 'new', '', 'ok')`,
    );
    const report = await h.service.expiry.runOnce();
    expect(report?.revocations).toBe(1);
    expect(report?.auditRows).toBe(1);
    const left = (await h.db.db.execute(
      sql`SELECT fingerprint FROM revoked_credentials WHERE fingerprint IN (${stale}, ${recent})`,
    )) as unknown as { rows: { fingerprint: Uint8Array }[] };
    expect(left.rows.map((r) => toHex(r.fingerprint))).toEqual([toHex(recent)]);
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM admin_audit WHERE method = 'old'`)).toBe(0);
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM admin_audit WHERE method = 'new'`)).toBe(1);
  });
});

describe("database dump", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth({ AS_QUEUE_KEY_UPDATE_INTERVAL: "3" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("holds no connection-offer plaintext and no handle plaintext", async () => {
    const bob = await registerUser(h);
    const handle = `dump_handle_${toHex(randomBytes(4))}`;
    const handleKey = SigningKey.generate();
    const handleQueueKey = HpkeKeyPair.generate();
    const hash = await createHandle(h, handle, handleKey, handleQueueKey);
    await h.as.publishHandleConnectionPackages({
      signed: await sign(
        auth.PublishHandleConnectionPackagesTbs,
        S.publishHandleConnectionPackages,
        {
          packages: [
            {
              connectionPackage: createHandleConnectionPackage({
                handleKey,
                lifetime: expirationFrom(h.now().getTime() - 1000, 7 * DAY),
              }).bytes,
              lastResort: true,
            },
          ],
        },
        handleKey,
        { $case: "handleHash", value: hash },
        h.now(),
      ),
    });
    const offers = Array.from({ length: 5 }, () => randomBytes(300));
    for (const offer of offers) {
      await h.as.enqueueConnectionOffer({ clientId: bob.wireId, connectionOffer: offer });
      await h.as.enqueueHandleConnectionOffer({ handleHash: hash, domain: "", connectionOffer: offer });
    }
    // The handle owner can read its queue (offers are there, just not in plaintext).
    const dequeued = await h.as.dequeueHandleConnectionOffers({
      signed: await sign(
        auth.DequeueHandleConnectionOffersTbs,
        S.dequeueHandleConnectionOffers,
        { sequenceNumberStart: 0n, maxMessages: 0 },
        handleKey,
        { $case: "handleHash", value: hash },
        h.now(),
      ),
    });
    expect(dequeued.messages.length).toBeGreaterThanOrEqual(6);
    await expectStatus(
      h.as.dequeueHandleConnectionOffers({
        signed: await sign(
          auth.DequeueHandleConnectionOffersTbs,
          S.dequeueHandleConnectionOffers,
          { sequenceNumberStart: 0n, maxMessages: 0 },
          SigningKey.generate(),
          { $case: "handleHash", value: hash },
          h.now(),
        ),
      }),
      status.UNAUTHENTICATED,
    );

    const url = h.db.url;
    if (!url) throw new Error("test database has no URL");
    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", url], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString();
    expect(dump).toContain("COPY public.queue_messages");
    expect(dump).toContain(toHex(hash)); // the hash is there…
    expect(dump).not.toContain(handle); // …the plaintext is not, neither as text…
    expect(dump).not.toContain(Buffer.from(handle).toString("hex")); // …nor as bytes
    for (const offer of offers) {
      // bytea appears hex-encoded in a dump; any 32-byte window of an offer would show.
      const hex = toHex(offer);
      for (let i = 0; i + 64 <= hex.length; i += 64) expect(dump).not.toContain(hex.slice(i, i + 64));
    }
  });
});
