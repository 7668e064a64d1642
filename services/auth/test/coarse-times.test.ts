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
  type Harness,
  queryNumber,
  registerUser,
  S,
  sign,
  signAs,
  startAuth,
} from "./support/harness.js";
import { loginForGrant, setPassword, startLogin } from "./support/password-helpers.js";

const DAY = 24 * 3_600_000;

/**
 * The precision of every time column in the AS's tables (services/auth/src/domain/coarse-time.ts).
 * Times at a finer precision, joined with the QS's records, would link a user id to its QS
 * pseudonym (the client registers with both back to back).
 */
const PRECISION: Record<string, "month" | "day" | "hour"> = {
  "clients.created_at": "month",
  "clients.last_active_at": "month",
  "revoked_credentials.revoked_at": "month",
  "clients.credential_not_after": "hour",
  "handles.expires_at": "hour",
  "connection_packages.expires_at": "hour",
  "queue_messages.expires_at": "day",
  // The exact expiry is sealed under a key derived from the grant (domain/add-client-grant.ts).
  "add_client_grants.expires_at": "hour",
};

/**
 * Exact times that say nothing about a user's activity: the AS's own key material, other domains'
 * public credentials, and when an operator made an admin call (the audit log's "when").
 */
const EXACT = new Set([
  "as_credentials.not_before",
  "as_credentials.not_after",
  "as_credentials.created_at",
  "remote_as_credentials.fetched_at",
  "admin_audit.at",
  // A login in progress: the row names no user (the user is inside the sealed state) and lives
  // minutes.
  "password_logins.expires_at",
]);

describe("time precision of the AS database (no timestamp finer than needed)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("stores every time about users, clients and handles only at its documented precision", async () => {
    // Registrations, a second client, packages, a handle with its package, offers, a revocation.
    const users = [];
    for (let i = 0; i < 5; i++) users.push(await registerUser(h));
    const alice = users[0]!;
    const second = await addClient(h, alice);
    await h.service.keyring.revoke(ClientCredential.decode(second.credential).fingerprint);
    for (const user of users) {
      await h.as.publishConnectionPackages({
        signed: await signAs(
          user,
          auth.PublishConnectionPackagesTbs,
          S.publishConnectionPackages,
          {
            packages: [
              {
                connectionPackage: createConnectionPackage({
                  clientKey: user.key,
                  clientCredential: ClientCredential.decode(user.credential),
                  lifetime: expirationFrom(h.now().getTime() - 1000, 7 * DAY),
                }).bytes,
                lastResort: true,
              },
            ],
          },
          h.now(),
        ),
      });
      await h.as.enqueueConnectionOffer({ clientId: user.wireId, connectionOffer: randomBytes(64) });
    }
    const handle = `times_${toHex(randomBytes(3))}`;
    const hash = handleHash(handle);
    const handleKey = SigningKey.generate();
    const handleOf = { $case: "handleHash" as const, value: hash };
    await h.as.createHandle({
      signed: await sign(
        auth.CreateHandleTbs,
        S.createHandle,
        {
          handle,
          handleHash: hash,
          verifyingKey: handleKey.publicKey,
          connectionQueueEncryptionKey: HpkeKeyPair.generate().publicKey.bytes,
        },
        handleKey,
        handleOf,
        h.now(),
      ),
    });
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
        handleOf,
        h.now(),
      ),
    });

    // An account password, a login in progress and an unused add-client grant.
    await setPassword(h, alice, "alice's password");
    await loginForGrant(h, alice, "alice's password");
    await startLogin(h, alice.wireId.user, "alice's password");

    const columns = (await h.db.db.execute(sql`
      SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = 'public'
        AND data_type IN ('timestamp with time zone', 'timestamp without time zone', 'date', 'time with time zone')
      ORDER BY table_name, column_name`)) as unknown as {
      rows: { table_name: string; column_name: string }[];
    };
    const found = columns.rows.map((c) => `${c.table_name}.${c.column_name}`);
    // Every time column is accounted for: a new one must be given a precision here.
    expect(found.filter((c) => !(c in PRECISION) && !EXACT.has(c))).toEqual([]);
    // users and handles keep no creation time at all.
    expect(found).not.toContain("users.created_at");
    expect(found).not.toContain("handles.created_at");

    const finer: string[] = [];
    for (const column of found.filter((c) => c in PRECISION)) {
      const [table, name] = column.split(".") as [string, string];
      const unit = PRECISION[column] as string;
      const present = await queryNumber(
        h.db.db,
        sql.raw(`SELECT count(*) FROM "${table}" WHERE "${name}" IS NOT NULL`),
      );
      expect(present, `${column} has values in this scenario`).toBeGreaterThan(0);
      const off = await queryNumber(
        h.db.db,
        sql.raw(`SELECT count(*) FROM "${table}" WHERE "${name}" IS NOT NULL
                 AND date_trunc('${unit}', "${name}" AT TIME ZONE 'UTC') <> "${name}" AT TIME ZONE 'UTC'`),
      );
      if (off > 0) finer.push(`${column}: ${off} value(s) finer than a ${unit}`);
    }
    expect(finer).toEqual([]);
  });
});
