import { execFileSync } from "node:child_process";
import { Metadata, status } from "@grpc/grpc-js";
import { ClientCredential, randomBytes, toHex } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import type { GrpcCallError } from "@phoenix/runtime/grpc";
import { createTestDatabase } from "@phoenix/runtime/testing";
import * as opaque from "@serenity-kit/opaque";
import { sql } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { authMigrationsFolder } from "../src/service.js";
import {
  csrOf,
  DOMAIN,
  expectStatus,
  type Harness,
  newClient,
  queryNumber,
  registerUser,
  S,
  signAs,
  startAuth,
  type TestClient,
} from "./support/harness.js";
import { finishLogin, loginForGrant, setPassword, startLogin } from "./support/password-helpers.js";

// Account passwords (OPAQUE) at the AS. The tests play the client side of OPAQUE with the same
// library the AS uses (its default key stretching), as an app would.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Out of the way unless a test is about them: every test calls from 127.0.0.1. */
const RELAXED = {
  AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR: "1000",
  AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR: "1000",
};

/** AddClientWithGrant for a new device of `userUuid`, signed with the new client's CSR key. */
async function addWithGrant(h: Harness, userUuid: Uint8Array, grant: Uint8Array) {
  const device = newClient(userUuid);
  const response = await h.as.addClientWithGrant({
    signed: await signAs(
      device,
      auth.AddClientWithGrantTbs,
      S.addClientWithGrant,
      {
        addClientGrant: grant,
        clientCsr: csrOf(device, h.now()),
        connectionQueueEncryptionKey: device.queueKey.publicKey.bytes,
      },
      h.now(),
    ),
  });
  return { ...device, credential: response.clientCredential };
}

async function listClients(h: Harness, client: TestClient) {
  return h.as.listClients({
    signed: await signAs(client, auth.ListClientsTbs, S.listClients, { userId: client.wireId.user }, h.now()),
  });
}

function refusal(error: GrpcCallError) {
  return {
    code: error.code,
    message: error.statusMessage,
    details: error.details.map((d) => toHex(d.value)),
  };
}

describe("account password (OPAQUE)", () => {
  let h: Harness | undefined;
  beforeAll(async () => {
    await opaque.ready;
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("logs in with the right password and adds exactly one new client with the grant", async () => {
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    await setPassword(h, alice, "correct horse battery staple");

    const login = await startLogin(h, alice.wireId.user, "correct horse battery staple");
    const before = h.now().getTime();
    const finished = await finishLogin(h, login);
    const after = h.now().getTime();
    expect(finished.addClientGrant).toHaveLength(32);
    // Valid for AS_PASSWORD_GRANT_LIFETIME (default 10 minutes) from the finish.
    const issuedAt = (finished.grantExpiresAt?.getTime() ?? 0) - 10 * MINUTE;
    expect(issuedAt).toBeGreaterThanOrEqual(before);
    expect(issuedAt).toBeLessThanOrEqual(after);
    // The login is used up by its finish.
    await expectStatus(finishLogin(h, login), status.UNAUTHENTICATED);

    const phone = await addWithGrant(h, alice.clientId.userId.uuid, finished.addClientGrant);
    expect(toHex(ClientCredential.decode(phone.credential).clientId.clientUuid)).toBe(
      toHex(phone.clientId.clientUuid),
    );
    // The new device is a client of the user like any other: it can sign requests.
    const listed = await listClients(h, phone);
    expect(listed.clients.map((c) => toHex(c.clientId?.clientUuid ?? new Uint8Array()))).toEqual(
      expect.arrayContaining([toHex(alice.clientId.clientUuid), toHex(phone.clientId.clientUuid)]),
    );
    expect(listed.clients).toHaveLength(2);

    // A second use of the grant adds nothing.
    const again = await expectStatus(
      addWithGrant(h, alice.clientId.userId.uuid, finished.addClientGrant),
      status.UNAUTHENTICATED,
    );
    expect(again.statusMessage).toContain("grant");
    expect((await listClients(h, alice)).clients).toHaveLength(2);

    // Two devices racing with one grant: exactly one is added.
    const raced = await loginForGrant(h, alice, "correct horse battery staple");
    const outcomes = await Promise.allSettled([
      addWithGrant(h, alice.clientId.userId.uuid, raced),
      addWithGrant(h, alice.clientId.userId.uuid, raced),
    ]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    expect((await listClients(h, alice)).clients).toHaveLength(3);
  });

  it("refuses a wrong password with UNAUTHENTICATED and limits the attempts per user id", async () => {
    h = await startAuth({
      AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR: "3",
      AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR: "1000",
    });
    const alice = await registerUser(h);
    const bob = await registerUser(h);
    await setPassword(h, alice, "alice's password");
    await setPassword(h, bob, "bob's password");

    for (let i = 0; i < 3; i++) {
      const wrong = await startLogin(h, alice.wireId.user, `guess ${i}`);
      expect(wrong.finalization, "a wrong password does not open the AS's answer").toBeUndefined();
      const refused = await expectStatus(finishLogin(h, wrong), status.UNAUTHENTICATED);
      expect(refused.statusMessage).toContain("password login failed");
    }
    // The fourth attempt on alice's account is refused before any OPAQUE work, even with the right password.
    const limited = await expectStatus(
      startLogin(h, alice.wireId.user, "alice's password"),
      status.RESOURCE_EXHAUSTED,
    );
    expect(limited.statusMessage).toContain("AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR");
    // Other accounts keep their own budget.
    expect(await loginForGrant(h, bob, "bob's password")).toHaveLength(32);
    // The budget refills.
    h.advance(60 * MINUTE);
    expect(await loginForGrant(h, alice, "alice's password")).toHaveLength(32);
  });

  it("limits login attempts per caller, whichever user ids they name", async () => {
    h = await startAuth({
      AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR: "2",
      AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR: "1000",
      AS_TRUSTED_PROXIES: "127.0.0.1",
    });
    const from = (address: string) => {
      const metadata = new Metadata();
      metadata.set("x-forwarded-for", address);
      return { metadata };
    };
    const someone = () => ({ uuid: randomBytes(16), domain: DOMAIN });
    await startLogin(h, someone(), "p", from("198.51.100.7"));
    await startLogin(h, someone(), "p", from("198.51.100.7"));
    const limited = await expectStatus(
      startLogin(h, someone(), "p", from("198.51.100.7")),
      status.RESOURCE_EXHAUSTED,
    );
    expect(limited.statusMessage).toContain("AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR");
    // Another client behind the same gateway has its own budget.
    await startLogin(h, someone(), "p", from("198.51.100.8"));
  });

  it("answers an unknown user id, or a user without a password, exactly like a wrong password", async () => {
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    const bob = await registerUser(h); // no password
    await setPassword(h, alice, "alice's password");

    const cases = {
      wrongPassword: await startLogin(h, alice.wireId.user, "not alice's password"),
      unknownUser: await startLogin(h, { uuid: randomBytes(16), domain: DOMAIN }, "any password"),
      noPassword: await startLogin(h, bob.wireId.user, "any password"),
    };
    const answers = [];
    for (const [name, login] of Object.entries(cases)) {
      expect(login.loginId, name).toHaveLength(16);
      expect(login.credentialResponse, name).toHaveLength(320);
      expect(login.finalization, name).toBeUndefined();
      answers.push(refusal(await expectStatus(finishLogin(h, login), status.UNAUTHENTICATED)));
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it("refuses an expired grant and a timed-out login; the expiry job deletes both", async () => {
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    await setPassword(h, alice, "alice's password");
    // Issued a minute past a whole hour: ten minutes later the grant's stored hour has not passed,
    // so the refusal below comes from its exact (sealed) expiry.
    h.advance(HOUR - (h.now().getTime() % HOUR) + MINUTE);
    const grant = await loginForGrant(h, alice, "alice's password");
    const pending = await startLogin(h, alice.wireId.user, "alice's password");

    h.advance(10 * MINUTE + 1000);
    expect(
      await queryNumber(h.db.db, sql`SELECT count(*) FROM add_client_grants WHERE expires_at > ${h.now()}`),
    ).toBe(1);
    const expired = await expectStatus(
      addWithGrant(h, alice.clientId.userId.uuid, grant),
      status.UNAUTHENTICATED,
    );
    expect(expired.statusMessage).toContain("expired");
    await expectStatus(finishLogin(h, pending), status.UNAUTHENTICATED);

    const pendingAgain = await startLogin(h, alice.wireId.user, "alice's password");
    const grantAgain = await loginForGrant(h, alice, "alice's password");
    // Grants are deleted once the hour their expiry is rounded up to has passed.
    h.advance(2 * 60 * MINUTE);
    const report = await h.service.expiry.runOnce();
    expect(report?.unfinishedPasswordLogins).toBe(1);
    expect(report?.addClientGrants).toBe(2);
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM password_logins`)).toBe(0);
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM add_client_grants`)).toBe(0);
    await expectStatus(finishLogin(h, pendingAgain), status.UNAUTHENTICATED);
    await expectStatus(addWithGrant(h, alice.clientId.userId.uuid, grantAgain), status.UNAUTHENTICATED);
  });

  it("replacing the password invalidates the old one, its grants and the logins started under it", async () => {
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    await setPassword(h, alice, "old password");
    const oldGrant = await loginForGrant(h, alice, "old password");
    const startedUnderOld = await startLogin(h, alice.wireId.user, "old password");
    expect(startedUnderOld.finalization).toBeDefined();

    await setPassword(h, alice, "new password");

    const oldLogin = await startLogin(h, alice.wireId.user, "old password");
    expect(oldLogin.finalization).toBeUndefined();
    await expectStatus(finishLogin(h, oldLogin), status.UNAUTHENTICATED);
    // Right for the record it started against, but that record is gone.
    await expectStatus(finishLogin(h, startedUnderOld), status.UNAUTHENTICATED);
    await expectStatus(addWithGrant(h, alice.clientId.userId.uuid, oldGrant), status.UNAUTHENTICATED);

    const grant = await loginForGrant(h, alice, "new password");
    await addWithGrant(h, alice.clientId.userId.uuid, grant);
    expect((await listClients(h, alice)).clients).toHaveLength(2);
  });

  it("DeletePassword ends password logins; the record goes with the user", async () => {
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    await setPassword(h, alice, "alice's password");
    const deletePassword = async () =>
      h!.as.deletePassword({
        signed: await signAs(alice, auth.DeletePasswordTbs, S.deletePassword, {}, h!.now()),
      });
    await deletePassword();
    const login = await startLogin(h, alice.wireId.user, "alice's password");
    expect(login.finalization).toBeUndefined();
    await expectStatus(finishLogin(h, login), status.UNAUTHENTICATED);
    await expectStatus(deletePassword(), status.NOT_FOUND);

    await setPassword(h, alice, "again");
    await loginForGrant(h, alice, "again"); // an unused grant
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM password_records`)).toBe(1);
    await h.as.deleteUser({
      signed: await signAs(alice, auth.DeleteUserTbs, S.deleteUser, { userId: alice.wireId.user }, h.now()),
    });
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM password_records`)).toBe(0);
    expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM add_client_grants`)).toBe(0);
  });

  it("refuses malformed requests, another user's CSR and users of other domains without using the grant", async () => {
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    const mallory = await registerUser(h);
    await setPassword(h, alice, "alice's password");

    const short = await expectStatus(
      h.as.startPasswordLogin({ userId: alice.wireId.user, credentialRequest: randomBytes(10) }),
      status.INVALID_ARGUMENT,
    );
    expect(short.statusMessage).toContain("credential_request");
    const remote = await expectStatus(
      h.as.startPasswordLogin({
        userId: { uuid: randomBytes(16), domain: "beta.example" },
        credentialRequest: randomBytes(96),
      }),
      status.INVALID_ARGUMENT,
    );
    expect(remote.statusMessage).toContain("user_id.domain");
    const badRecord = await expectStatus(
      h.as.finishPasswordRegistration({
        signed: await signAs(
          alice,
          auth.FinishPasswordRegistrationTbs,
          S.finishPasswordRegistration,
          { registrationRecord: new Uint8Array(192).fill(0xff) },
          h.now(),
        ),
      }),
      status.INVALID_ARGUMENT,
    );
    expect(badRecord.statusMessage).toContain("registration_record");
    // The bad record changed nothing: the password still works.
    const grant = await loginForGrant(h, alice, "alice's password");

    // Mallory cannot spend alice's grant on a client of his own user…
    const other = await expectStatus(
      addWithGrant(h, mallory.clientId.userId.uuid, grant),
      status.PERMISSION_DENIED,
    );
    expect(other.statusMessage).toContain("another user");
    await expectStatus(addWithGrant(h, alice.clientId.userId.uuid, randomBytes(31)), status.INVALID_ARGUMENT);
    // …and the refusals left it unused.
    await addWithGrant(h, alice.clientId.userId.uuid, grant);
    expect((await listClients(h, alice)).clients).toHaveLength(2);
    expect((await listClients(h, mallory)).clients).toHaveLength(1);
  });
});

describe("AS database dump with account passwords", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("holds neither the password nor anything equal to it, nor a usable grant", async () => {
    await opaque.ready;
    h = await startAuth(RELAXED);
    const alice = await registerUser(h);
    const password = `dump password ${toHex(randomBytes(6))}`;
    await setPassword(h, alice, password);
    const grant = await loginForGrant(h, alice, password);
    const pending = await startLogin(h, alice.wireId.user, password); // a login in progress

    const url = h.db.url;
    if (!url) throw new Error("test database has no URL");
    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", url], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString();
    expect(dump).toContain("COPY public.password_records");
    expect(dump).toContain("COPY public.password_logins");
    const forms = [
      password,
      Buffer.from(password).toString("hex"),
      Buffer.from(password).toString("base64"),
      Buffer.from(password).toString("base64url"),
      toHex(grant), // only its hash is stored
      toHex(pending.finalization ?? new Uint8Array(64)), // the MAC the pending login expects
      Buffer.from(pending.sessionKey ?? "", "base64url").toString("hex"),
    ];
    for (const form of forms) expect(dump.toLowerCase()).not.toContain(form.toLowerCase());
  });
});

describe("the OPAQUE server setup at rest", () => {
  it("follows a key-encryption-key rotation, and a setup no configured key opens stops the start", async () => {
    await opaque.ready;
    const db = await createTestDatabase({ migrationsFolder: authMigrationsFolder });
    const [k1, k2] = [toHex(randomBytes(32)), toHex(randomBytes(32))];
    const kekIdOfSetup = () =>
      db.db
        .execute(sql`SELECT encode(setup_kek_id, 'hex') AS id FROM opaque_server_setup`)
        .then((r) => (r as unknown as { rows: { id: string }[] }).rows.map((row) => row.id));
    try {
      let h = await startAuth({ ...RELAXED, AS_KEY_ENCRYPTION_KEY: k1 }, { database: db });
      const alice = await registerUser(h);
      await setPassword(h, alice, "alice's password");
      await h.close();
      const [underK1] = await kekIdOfSetup();
      expect(underK1).toBeDefined();

      h = await startAuth(
        { ...RELAXED, AS_KEY_ENCRYPTION_KEY: k2, AS_KEY_ENCRYPTION_KEY_PREVIOUS: k1 },
        { database: db },
      );
      expect(await loginForGrant(h, alice, "alice's password")).toHaveLength(32);
      await h.close();
      const [underK2] = await kekIdOfSetup();
      expect(underK2).not.toBe(underK1);

      // Resealed: the old key is no longer needed, and the same setup still opens the record.
      h = await startAuth({ ...RELAXED, AS_KEY_ENCRYPTION_KEY: k2 }, { database: db });
      expect(await loginForGrant(h, alice, "alice's password")).toHaveLength(32);
      await h.close();
      expect(await queryNumber(db.db, sql`SELECT count(*) FROM opaque_server_setup`)).toBe(1);

      // Never a silent new setup (it would invalidate every password): the AS refuses to start.
      await db.db.execute(sql`UPDATE opaque_server_setup SET setup_kek_id = ${randomBytes(16)}`);
      await expect(startAuth({ ...RELAXED, AS_KEY_ENCRYPTION_KEY: k2 }, { database: db })).rejects.toThrow(
        /OPAQUE server setup/,
      );
    } finally {
      await db.close();
    }
  });
});
