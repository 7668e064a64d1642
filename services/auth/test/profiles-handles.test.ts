import { status } from "@grpc/grpc-js";
import {
  decryptUserProfile,
  encryptUserProfile,
  fingerprint,
  generateUserProfileKey,
  handleHash,
  randomBytes,
  SigningKey,
  toHex,
  utf8,
} from "@phoenix/crypto";
import { auth, type common } from "@phoenix/proto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectStatus,
  type Harness,
  newClient,
  queryNumber,
  registerUser,
  S,
  sign,
  signAs,
  startAuth,
} from "./support/harness.js";

/** A handle owner's keys. */
interface TestHandle {
  handle: string;
  hash: Uint8Array;
  key: SigningKey;
}

function newHandle(handle: string): TestHandle {
  return { handle, hash: handleHash(handle), key: SigningKey.generate() };
}

function handleSender(h: TestHandle): common.RequestHeader["sender"] {
  return { $case: "handleHash", value: h.hash };
}

async function createHandleRequest(
  h: Harness,
  owner: TestHandle,
  overrides: Partial<Omit<auth.CreateHandleTbs, "header">> = {},
): Promise<auth.CreateHandleRequest> {
  const signed = await sign(
    auth.CreateHandleTbs,
    S.createHandle,
    {
      handle: owner.handle,
      handleHash: owner.hash,
      verifyingKey: owner.key.publicKey,
      connectionQueueEncryptionKey: newClient().queueKey.publicKey.bytes,
      ...overrides,
    },
    owner.key,
    handleSender(owner),
    h.now(),
  );
  return { signed };
}

describe("user profiles", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("keeps the old profile readable while a new one is staged, until merge", async () => {
    const alice = await registerUser(h);
    const userId = alice.clientId.userId;
    const oldIndex = encryptUserProfile(alice.profileKey, userId, new Uint8Array(1)).keyIndex;
    const first = await h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: oldIndex });
    expect(
      new TextDecoder().decode(decryptUserProfile(alice.profileKey, userId, first.encryptedUserProfile)),
    ).toBe("Alice");

    const newKey = generateUserProfileKey();
    const staged = encryptUserProfile(newKey, userId, new TextEncoder().encode("Alice 2"));
    await h.as.stageUserProfile({
      signed: await signAs(
        alice,
        auth.StageUserProfileTbs,
        S.stageUserProfile,
        { encryptedUserProfile: staged.encrypted },
        h.now(),
      ),
    });
    // Readers with either key index get a profile they can decrypt.
    await h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: oldIndex });
    const fresh = await h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: staged.keyIndex });
    expect(new TextDecoder().decode(decryptUserProfile(newKey, userId, fresh.encryptedUserProfile))).toBe(
      "Alice 2",
    );

    await h.as.mergeUserProfile({
      signed: await signAs(alice, auth.MergeUserProfileTbs, S.mergeUserProfile, {}, h.now()),
    });
    await expectStatus(
      h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: oldIndex }),
      status.NOT_FOUND,
    );
    await h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: staged.keyIndex });
    await expectStatus(
      h.as.mergeUserProfile({
        signed: await signAs(alice, auth.MergeUserProfileTbs, S.mergeUserProfile, {}, h.now()),
      }),
      status.FAILED_PRECONDITION,
    );
  });

  it("refuses oversized and malformed profiles and unknown users", async () => {
    const alice = await registerUser(h);
    const huge = new Uint8Array(64 * 1024 + 1);
    await expectStatus(
      h.as.stageUserProfile({
        signed: await signAs(
          alice,
          auth.StageUserProfileTbs,
          S.stageUserProfile,
          { encryptedUserProfile: huge },
          h.now(),
        ),
      }),
      status.RESOURCE_EXHAUSTED,
    );
    await expectStatus(
      h.as.stageUserProfile({
        signed: await signAs(
          alice,
          auth.StageUserProfileTbs,
          S.stageUserProfile,
          { encryptedUserProfile: new Uint8Array(10) },
          h.now(),
        ),
      }),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(
      h.as.getUserProfile({ userId: newClient().wireId.user, keyIndex: new Uint8Array(32) }),
      status.NOT_FOUND,
    );
    await expectStatus(
      h.as.getUserProfile({ userId: alice.wireId.user, keyIndex: new Uint8Array(0) }),
      status.INVALID_ARGUMENT,
    );
  });
});

describe("handles", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth({ AS_HANDLE_LIFETIME: "1h" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("creates a handle, reports it taken, refreshes and deletes it", async () => {
    const owner = newHandle(`ada_${suffix(8)}`);
    expect((await h.as.checkHandleExists({ handleHash: owner.hash, domain: "" })).exists).toBe(false);
    const created = await h.as.createHandle(await createHandleRequest(h, owner));
    expect(created.expiresAt!.getTime()).toBeGreaterThan(h.now().getTime());
    expect((await h.as.checkHandleExists({ handleHash: owner.hash, domain: "" })).exists).toBe(true);

    const rival = { ...newHandle(owner.handle) };
    await expectStatus(h.as.createHandle(await createHandleRequest(h, rival)), status.ALREADY_EXISTS);

    // Expiry times are kept to the hour (rounded up): a refresh an hour later moves it.
    h.advance(60 * 60_000);
    const refreshed = await h.as.refreshHandle({
      signed: await sign(auth.RefreshHandleTbs, S.refreshHandle, {}, owner.key, handleSender(owner), h.now()),
    });
    expect(refreshed.expiresAt!.getTime()).toBeGreaterThan(created.expiresAt!.getTime());

    // Signed by someone else's key: UNAUTHENTICATED.
    await expectStatus(
      h.as.deleteHandle({
        signed: await sign(
          auth.DeleteHandleTbs,
          S.deleteHandle,
          {},
          SigningKey.generate(),
          handleSender(owner),
          h.now(),
        ),
      }),
      status.UNAUTHENTICATED,
    );
    await h.as.deleteHandle({
      signed: await sign(auth.DeleteHandleTbs, S.deleteHandle, {}, owner.key, handleSender(owner), h.now()),
    });
    expect((await h.as.checkHandleExists({ handleHash: owner.hash, domain: "" })).exists).toBe(false);
    await expectStatus(
      h.as.refreshHandle({
        signed: await sign(
          auth.RefreshHandleTbs,
          S.refreshHandle,
          {},
          owner.key,
          handleSender(owner),
          h.now(),
        ),
      }),
      status.NOT_FOUND,
    );
  });

  it("lets an expired handle be taken again, dropping the old owner's queue", async () => {
    const first = newHandle(`grace_${suffix(8)}`);
    await h.as.createHandle(await createHandleRequest(h, first));
    const queuesBefore = await queryNumber(
      h.db.db,
      sql`SELECT count(*) FROM connection_queues WHERE handle_hash = ${first.hash}`,
    );
    expect(queuesBefore).toBe(1);
    h.advance(2 * 3_600_000);
    expect((await h.as.checkHandleExists({ handleHash: first.hash, domain: "" })).exists).toBe(false);
    await expectStatus(
      h.as.refreshHandle({
        signed: await sign(
          auth.RefreshHandleTbs,
          S.refreshHandle,
          {},
          first.key,
          handleSender(first),
          h.now(),
        ),
      }),
      status.NOT_FOUND,
    );
    const second = newHandle(first.handle);
    await h.as.createHandle(await createHandleRequest(h, second));
    // The old key no longer speaks for the handle; the new one does.
    await expectStatus(
      h.as.refreshHandle({
        signed: await sign(
          auth.RefreshHandleTbs,
          S.refreshHandle,
          {},
          first.key,
          handleSender(first),
          h.now(),
        ),
      }),
      status.UNAUTHENTICATED,
    );
    await h.as.refreshHandle({
      signed: await sign(
        auth.RefreshHandleTbs,
        S.refreshHandle,
        {},
        second.key,
        handleSender(second),
        h.now(),
      ),
    });
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM connection_queues WHERE handle_hash = ${first.hash}`,
      ),
    ).toBe(1);
  });

  it("validates the plaintext and its hash, and stores only the hash", async () => {
    for (const bad of ["ab", "1abc", "Upper", "with space", "x".repeat(64), "ümlaut"]) {
      const owner = newHandle("placeholder");
      await expectStatus(
        h.as.createHandle(await createHandleRequest(h, owner, { handle: bad, handleHash: handleHash(bad) })),
        status.INVALID_ARGUMENT,
      );
    }
    const owner = newHandle(`zoe-${suffix(6)}`);
    // A hash that is not the handle's (signed consistently, so only the hash check can refuse it):
    // another handle's, and the SHA-256 form an earlier AS used instead of libs/crypto's handleHash.
    for (const wrong of [handleHash("someone-else"), fingerprint("HandleHash", utf8(owner.handle))]) {
      const error = await expectStatus(
        h.as.createHandle(await createHandleRequest(h, { ...owner, hash: wrong })),
        status.INVALID_ARGUMENT,
      );
      expect(error.statusMessage).toContain("is not the hash of tbs.handle");
    }
    await h.as.createHandle(await createHandleRequest(h, owner));
    // The AS stores exactly the bytes a client gets from libs/crypto's handleHash.
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM handles WHERE handle_hash = ${handleHash(owner.handle)}`,
      ),
    ).toBe(1);
    const plaintext = Buffer.from(owner.handle).toString("hex");
    const dump = await queryNumber(
      h.db.db,
      sql`SELECT count(*) FROM handles WHERE position(decode(${plaintext}, 'hex') in handle_hash) > 0`,
    );
    expect(dump).toBe(0);
  });

  it("refuses a handle request whose sender is not the handle hash", async () => {
    const owner = newHandle(`kim_${suffix(6)}`);
    const signed = await sign(
      auth.CreateHandleTbs,
      S.createHandle,
      {
        handle: owner.handle,
        handleHash: owner.hash,
        verifyingKey: owner.key.publicKey,
        connectionQueueEncryptionKey: newClient().queueKey.publicKey.bytes,
      },
      owner.key,
      { $case: "handleHash", value: handleHash("another-one") },
      h.now(),
    );
    await expectStatus(h.as.createHandle({ signed }), status.INVALID_ARGUMENT);
  });
});

/** A random lower-case hex suffix, so handles differ between runs. */
function suffix(length: number): string {
  return toHex(randomBytes(8)).slice(0, length);
}
