import { status } from "@grpc/grpc-js";
import {
  AsCredential,
  AsIntermediateCredential,
  ClientCredential,
  CredentialVerifier,
  randomBytes,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addClient,
  csrOf,
  DOMAIN,
  expectStatus,
  type Harness,
  newClient,
  queryNumber,
  registerRequest,
  registerUser,
  S,
  sign,
  signAs,
  startAuth,
  wireClientId,
} from "./support/harness.js";

const Reason = common.ErrorReason;

function reasonOf(error: {
  details: readonly { typeUrl: string; value: Uint8Array }[];
}): common.ErrorReason | undefined {
  const detail = error.details.find((d) => d.typeUrl.endsWith("phoenix.common.v1.ErrorDetail"));
  return detail ? common.ErrorDetail.decode(detail.value).reason : undefined;
}

async function verifierFor(h: Harness): Promise<CredentialVerifier> {
  const published = await h.as.getAsCredentials({ domain: "" });
  const verifier = new CredentialVerifier({ revoked: published.revokedFingerprints });
  for (const root of published.asCredentials) verifier.addRoot(AsCredential.decode(root));
  for (const i of published.asIntermediateCredentials)
    verifier.addIntermediate(AsIntermediateCredential.decode(i));
  return verifier;
}

describe("AS credentials and users", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("serves a root and an intermediate that verify, and signs registrations with them", async () => {
    const published = await h.as.getAsCredentials({ domain: "" });
    expect(published.domain).toBe(DOMAIN);
    expect(published.asCredentials).toHaveLength(1);
    expect(published.asIntermediateCredentials).toHaveLength(1);
    const alice = await registerUser(h);
    const credential = (await verifierFor(h)).verifyClientCredential(
      ClientCredential.decode(alice.credential),
    );
    expect(toHex(credential.clientId.userId.uuid)).toBe(toHex(alice.clientId.userId.uuid));
    expect(credential.verifyingKey.equals(alice.key.verifyingKey)).toBe(true);
  });

  it("refuses a malformed domain; another domain is UNAVAILABLE without a federation gateway", async () => {
    await expectStatus(h.as.getAsCredentials({ domain: "Not A Domain" }), status.INVALID_ARGUMENT);
    await expectStatus(h.as.getAsCredentials({ domain: "beta.example" }), status.UNAVAILABLE);
  });

  it("rotates the intermediate without invalidating credentials it signed, and publishes revocations", async () => {
    const before = await registerUser(h);
    const rotated = await h.service.keyring.rotate();
    const published = await h.as.getAsCredentials({ domain: "" });
    expect(published.asIntermediateCredentials.length).toBeGreaterThanOrEqual(2);
    const after = await registerUser(h);
    expect(toHex(ClientCredential.decode(after.credential).signerFingerprint)).toBe(rotated.id);
    const verifier = await verifierFor(h);
    verifier.verifyClientCredential(ClientCredential.decode(before.credential));
    verifier.verifyClientCredential(ClientCredential.decode(after.credential));

    const revoked = randomBytes(32);
    await h.service.keyring.revoke(revoked);
    const withRevocation = await h.as.getAsCredentials({ domain: "" });
    expect(withRevocation.revokedFingerprints.map(toHex)).toContain(toHex(revoked));
  });

  it("refuses a second registration of the same user id with ALREADY_EXISTS", async () => {
    const alice = await registerUser(h);
    const again = newClient(alice.clientId.userId.uuid);
    const error = await expectStatus(
      h.as.registerUser(await registerRequest(again, h.now())),
      status.ALREADY_EXISTS,
    );
    expect(error.statusMessage).toContain("taken");
  });

  it("refuses a CSR for another domain with INVALID_ARGUMENT", async () => {
    const mallory = newClient(randomBytes(16), "beta.example");
    const error = await expectStatus(
      h.as.registerUser(await registerRequest(mallory, h.now())),
      status.INVALID_ARGUMENT,
    );
    expect(reasonOf(error)).toBe(Reason.ERROR_REASON_WRONG_DOMAIN);
  });

  it("refuses a request signed with another key (forged) with UNAUTHENTICATED", async () => {
    const alice = newClient();
    const request = await registerRequest(alice, h.now());
    const forged = {
      signed: { tbs: request.signed!.tbs, signature: SigningKey.generate().sign("x", request.signed!.tbs) },
    };
    const error = await expectStatus(h.as.registerUser(forged), status.UNAUTHENTICATED);
    expect(reasonOf(error)).toBe(Reason.ERROR_REASON_BAD_SIGNATURE);
  });

  it("refuses a replayed request, a stale timestamp and a wrong label with UNAUTHENTICATED", async () => {
    const alice = await registerUser(h);
    const list = await signAs(
      alice,
      auth.ListClientsTbs,
      S.listClients,
      { userId: alice.wireId.user },
      h.now(),
    );
    await h.as.listClients({ signed: list });
    const replay = await expectStatus(h.as.listClients({ signed: list }), status.UNAUTHENTICATED);
    expect(reasonOf(replay)).toBe(Reason.ERROR_REASON_REPLAYED_REQUEST);

    const stale = await signAs(
      alice,
      auth.ListClientsTbs,
      S.listClients,
      { userId: alice.wireId.user },
      new Date(h.now().getTime() - 10 * 60_000),
    );
    expect(reasonOf(await expectStatus(h.as.listClients({ signed: stale }), status.UNAUTHENTICATED))).toBe(
      Reason.ERROR_REASON_STALE_TIMESTAMP,
    );

    // A valid DeleteUser signature presented to ListClients: the label does not match.
    const other = await signAs(
      alice,
      auth.ListClientsTbs,
      S.deleteUser,
      { userId: alice.wireId.user },
      h.now(),
    );
    expect(reasonOf(await expectStatus(h.as.listClients({ signed: other }), status.UNAUTHENTICATED))).toBe(
      Reason.ERROR_REASON_WRONG_LABEL,
    );

    const stranger = newClient(alice.clientId.userId.uuid);
    const unknown = await signAs(
      stranger,
      auth.ListClientsTbs,
      S.listClients,
      { userId: alice.wireId.user },
      h.now(),
    );
    expect(reasonOf(await expectStatus(h.as.listClients({ signed: unknown }), status.UNAUTHENTICATED))).toBe(
      Reason.ERROR_REASON_UNKNOWN_SENDER,
    );
  });

  it("adds, lists, renews and deletes clients with the right statuses", async () => {
    const alice = await registerUser(h);
    const phone = await addClient(h, alice);
    const list = await h.as.listClients({
      signed: await signAs(phone, auth.ListClientsTbs, S.listClients, { userId: alice.wireId.user }, h.now()),
    });
    expect(list.clients.map((c) => toHex(c.clientId!.clientUuid)).sort()).toEqual(
      [alice, phone].map((c) => toHex(c.clientId.clientUuid)).sort(),
    );

    // AddClient with a CSR of another user, and with a taken client id.
    const bob = await registerUser(h);
    const foreign = newClient(bob.clientId.userId.uuid);
    await expectStatus(
      h.as.addClient({
        signed: await signAs(
          alice,
          auth.AddClientTbs,
          S.addClient,
          {
            clientCsr: csrOf(foreign, h.now()),
            connectionQueueEncryptionKey: foreign.queueKey.publicKey.bytes,
          },
          h.now(),
        ),
      }),
      status.INVALID_ARGUMENT,
    );
    const duplicate = { ...newClient(alice.clientId.userId.uuid), clientId: phone.clientId };
    await expectStatus(
      h.as.addClient({
        signed: await signAs(
          alice,
          auth.AddClientTbs,
          S.addClient,
          {
            clientCsr: csrOf(duplicate, h.now()),
            connectionQueueEncryptionKey: duplicate.queueKey.publicKey.bytes,
          },
          h.now(),
        ),
      }),
      status.ALREADY_EXISTS,
    );

    // Right signature, wrong user.
    await expectStatus(
      h.as.listClients({
        signed: await signAs(bob, auth.ListClientsTbs, S.listClients, { userId: alice.wireId.user }, h.now()),
      }),
      status.PERMISSION_DENIED,
    );
    await expectStatus(
      h.as.deleteClient({
        signed: await signAs(bob, auth.DeleteClientTbs, S.deleteClient, { clientId: phone.wireId }, h.now()),
      }),
      status.PERMISSION_DENIED,
    );
    await expectStatus(
      h.as.deleteUser({
        signed: await signAs(bob, auth.DeleteUserTbs, S.deleteUser, { userId: alice.wireId.user }, h.now()),
      }),
      status.PERMISSION_DENIED,
    );
    await expectStatus(
      h.as.deleteClient({
        signed: await signAs(
          alice,
          auth.DeleteClientTbs,
          S.deleteClient,
          { clientId: wireClientId(newClient(alice.clientId.userId.uuid).clientId) },
          h.now(),
        ),
      }),
      status.NOT_FOUND,
    );

    // Renewal with a new key: the old key stops working.
    const newKey = SigningKey.generate();
    const renewed = await h.as.renewClientCredential({
      signed: await signAs(
        phone,
        auth.RenewClientCredentialTbs,
        S.renewClientCredential,
        { clientCsr: csrOf({ key: newKey, clientId: phone.clientId }, h.now()) },
        h.now(),
      ),
    });
    expect(ClientCredential.decode(renewed.clientCredential).verifyingKey.equals(newKey.verifyingKey)).toBe(
      true,
    );
    await expectStatus(
      h.as.listClients({
        signed: await signAs(
          phone,
          auth.ListClientsTbs,
          S.listClients,
          { userId: alice.wireId.user },
          h.now(),
        ),
      }),
      status.UNAUTHENTICATED,
    );
    const renewedPhone = { ...phone, key: newKey };

    await h.as.deleteClient({
      signed: await signAs(
        renewedPhone,
        auth.DeleteClientTbs,
        S.deleteClient,
        { clientId: phone.wireId },
        h.now(),
      ),
    });
    await expectStatus(
      h.as.deleteClient({
        signed: await signAs(
          alice,
          auth.DeleteClientTbs,
          S.deleteClient,
          { clientId: alice.wireId },
          h.now(),
        ),
      }),
      status.FAILED_PRECONDITION,
    );
  });

  it("deletes a user and every row of it in one go", async () => {
    const carol = await registerUser(h);
    await addClient(h, carol);
    const uuid = carol.clientId.userId.uuid;
    const rowsOf = async () => {
      return queryNumber(
        h.db.db,
        sql`
        SELECT (SELECT count(*) FROM users WHERE user_uuid = ${uuid})
             + (SELECT count(*) FROM user_profiles WHERE user_uuid = ${uuid})
             + (SELECT count(*) FROM clients WHERE user_uuid = ${uuid})
             + (SELECT count(*) FROM connection_packages WHERE user_uuid = ${uuid})
             + (SELECT count(*) FROM connection_queues WHERE user_uuid = ${uuid})
             + (SELECT count(*) FROM queue_messages m JOIN connection_queues q USING (queue_id) WHERE q.user_uuid = ${uuid}) AS n`,
      );
    };
    const allMessages = () => queryNumber(h.db.db, sql`SELECT count(*) AS n FROM queue_messages`);
    expect(await rowsOf()).toBeGreaterThan(5);
    const messagesBefore = await allMessages();
    await h.as.deleteUser({
      signed: await signAs(carol, auth.DeleteUserTbs, S.deleteUser, { userId: carol.wireId.user }, h.now()),
    });
    expect(await rowsOf()).toBe(0);
    expect(await allMessages()).toBe(messagesBefore - 2); // the two queues' initial ratchet messages
    await expectStatus(
      h.as.listClients({
        signed: await signAs(
          carol,
          auth.ListClientsTbs,
          S.listClients,
          { userId: carol.wireId.user },
          h.now(),
        ),
      }),
      status.UNAUTHENTICATED,
    );
  });

  it("refuses a header sender that differs from the CSR", async () => {
    const alice = newClient();
    const request = await registerRequest(alice, h.now());
    const other = newClient();
    const signed = await sign(
      auth.RegisterUserTbs,
      S.registerUser,
      auth.RegisterUserTbs.decode(request.signed!.tbs),
      alice.key,
      { $case: "client", value: other.wireId },
      h.now(),
    );
    await expectStatus(h.as.registerUser({ signed }), status.INVALID_ARGUMENT);
  });
});

describe("registration gating", () => {
  it("refuses every registration when closed", async () => {
    const h = await startAuth({ AS_REGISTRATION: "closed" });
    try {
      const error = await expectStatus(registerUser(h), status.PERMISSION_DENIED);
      expect(reasonOf(error)).toBe(Reason.ERROR_REASON_REGISTRATION_CLOSED);
    } finally {
      await h.close();
    }
  });

  it("requires a valid invite code when gated; codes are single-use unless configured otherwise", async () => {
    const h = await startAuth({
      AS_REGISTRATION: "invite",
      AS_INVITE_CODES: "first-code, second-code:2, third-code",
    });
    try {
      await expectStatus(registerUser(h), status.PERMISSION_DENIED);
      await expectStatus(registerUser(h, { inviteCode: "wrong-code" }), status.PERMISSION_DENIED);
      const ok = await registerUser(h, { inviteCode: "first-code" });
      expect(ok.credential.length).toBeGreaterThan(0);
      const usedUp = await expectStatus(
        registerUser(h, { inviteCode: "first-code" }),
        status.PERMISSION_DENIED,
      );
      expect(usedUp.statusMessage).toContain("used up");
      expect(reasonOf(usedUp)).toBe(Reason.ERROR_REASON_REGISTRATION_CLOSED);

      await registerUser(h, { inviteCode: "second-code" });
      await registerUser(h, { inviteCode: "second-code" });
      await expectStatus(registerUser(h, { inviteCode: "second-code" }), status.PERMISSION_DENIED);

      // A registration that fails (user id taken) gives its use back: the transaction rolls back.
      const taken = newClient(ok.clientId.userId.uuid);
      await expectStatus(
        h.as.registerUser(await registerRequest(taken, h.now(), { inviteCode: "third-code" })),
        status.ALREADY_EXISTS,
      );
      await registerUser(h, { inviteCode: "third-code" });

      // Only hashes of the codes are stored.
      expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM invite_code_uses`)).toBe(3);
      const plaintext = Buffer.from("second-code").toString("hex");
      expect(
        await queryNumber(
          h.db.db,
          sql`SELECT count(*) FROM invite_code_uses WHERE position(decode(${plaintext}, 'hex') in code_hash) > 0`,
        ),
      ).toBe(0);
    } finally {
      await h.close();
    }
  });

  it("lets only one of several concurrent registrations use a single-use code", async () => {
    const h = await startAuth({ AS_REGISTRATION: "invite", AS_INVITE_CODES: "only-once" });
    try {
      const attempts = await Promise.allSettled(
        Array.from({ length: 6 }, () => registerUser(h, { inviteCode: "only-once" })),
      );
      expect(attempts.filter((a) => a.status === "fulfilled")).toHaveLength(1);
      for (const attempt of attempts) {
        if (attempt.status === "rejected")
          expect(attempt.reason).toMatchObject({ code: status.PERMISSION_DENIED });
      }
      expect(await queryNumber(h.db.db, sql`SELECT count(*) FROM users`)).toBe(1);
    } finally {
      await h.close();
    }
  });
});
