// Registration: AS credential, QS user/client records, connection packages and AddPackages.
import {
  ClientCredential,
  ClientCredentialCsr,
  createConnectionPackage,
  encodeAddPackage,
  encryptLeafSecrets,
  encryptUserProfile,
  expirationFrom,
  generateAeadKey,
  generateUserProfileKey,
  HpkeKeyPair,
  randomBytes,
  SigningKey,
  toHex,
  type UserId,
  verifyConnectionPackage,
} from "@phoenix/crypto";
import { auth, queue } from "@phoenix/proto";
import { encodeKeyPackage, makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { type Account, accountToJson } from "../account.js";
import { ADD_PACKAGES, AS, CONNECTION_PACKAGES, DAY, QS } from "../constants.js";
import { ClientCore, ciphersuite } from "../core/client-core.js";
import { fetchVerifier } from "../core/trust.js";
import { profileBytes } from "../protocol/codecs.js";
import { signRequest, validityStart, wireUserId } from "../protocol/helpers.js";
import { buf, ClientStore } from "../store/client-store.js";
import { encodePrivateKeyPackage } from "../store/codecs.js";
import * as t from "../store/schema.js";
import type { PhoenixClientOptions } from "../types.js";

/**
 * Registers a new user with this client on the homeserver of `domain`: AS credential, connection
 * packages, QS user and client records, AddPackages (one last resort), encrypted profile.
 */
export async function register(
  options: PhoenixClientOptions & { domain: string; displayName: string; inviteCode?: string },
): Promise<ClientCore> {
  const { transport } = options;
  const cs = await ciphersuite();
  const verifier = await fetchVerifier(transport);
  const now = Date.now();
  const clientKey = SigningKey.generate();
  const userUuid = randomBytes(16);
  const clientUuid = randomBytes(16);
  const userId: UserId = { uuid: userUuid, domain: options.domain };
  const connectionQueueKey = HpkeKeyPair.generate();
  const profileKey = generateUserProfileKey();
  const csr = ClientCredentialCsr.create(
    clientKey,
    { clientUuid, userId },
    expirationFrom(validityStart(now), 170 * DAY),
  );
  const wireClient = { user: wireUserId(userId), clientUuid };
  const registered = await transport.auth.registerUser({
    signed: await signRequest(
      auth.RegisterUserTbs,
      AS.registerUser,
      {
        clientCsr: csr.bytes,
        encryptedUserProfile: encryptUserProfile(profileKey, userId, profileBytes(options.displayName))
          .encrypted,
        connectionQueueEncryptionKey: connectionQueueKey.publicKey.bytes,
        inviteCode: options.inviteCode ?? "",
      },
      clientKey,
      { $case: "client", value: wireClient },
    ),
  });
  const credential = verifier.verifyClientCredential(ClientCredential.decode(registered.clientCredential));

  // The QS records are pseudonymous: nothing in them links to the AS identity. The QS record is
  // created right after the AS user, on purpose: what decouples the two is on the servers —
  // the QS stores no creation time and only coarse ones (key update hour, activity month), so a
  // snapshot of both databases cannot pair records by time (issue #13; test:
  // libs/test-harness/test/registration-linkability.test.ts). A random delay would have to span
  // hours to hide one registration among others, and the client could receive nothing meanwhile.
  const qsKeys = await transport.queue.getQueueConfigEncryptionKey({});
  const qsConfigKey = qsKeys.keys.find((k) => k.current)?.publicKey;
  if (qsConfigKey === undefined) throw new Error("the QS publishes no current queue-config key");
  const qsUserKey = SigningKey.generate();
  const qsClientKey = SigningKey.generate();
  const qsQueueKey = HpkeKeyPair.generate();
  const friendshipToken = randomBytes(32);
  const created = await transport.queue.createUser({
    signed: await signRequest(
      queue.CreateUserTbs,
      QS.createUser,
      {
        userRecordAuthKey: qsUserKey.publicKey,
        friendshipToken,
        clientRecordAuthKey: qsClientKey.publicKey,
        queueEncryptionKey: qsQueueKey.publicKey.bytes,
        sealedPushToken: new Uint8Array(0),
      },
      qsUserKey,
      undefined,
    ),
  });
  const account: Account = {
    domain: options.domain,
    userUuid,
    clientUuid,
    clientKeySeed: clientKey.exportSeed(),
    clientCredential: credential.bytes,
    connectionQueueKey: connectionQueueKey.privateBytes,
    profileKey,
    displayName: options.displayName,
    friendshipToken,
    friendshipEncryptionKey: generateAeadKey(),
    qsUserKeySeed: qsUserKey.exportSeed(),
    qsUserId: created.qsUserId,
    qsClientKeySeed: qsClientKey.exportSeed(),
    qsClientId: created.qsClientId,
    qsQueueKey: qsQueueKey.privateBytes,
    qsConfigKey,
  };
  const store = ClientStore.open(options.storePath);
  store.setJson("account", accountToJson(account));
  const core = new ClientCore(transport, store, account, cs, verifier);
  await publishConnectionPackages(core);
  await publishAddPackages(core);
  await store.durable();
  return core;
}

export async function publishConnectionPackages(core: ClientCore): Promise<void> {
  const lifetime = expirationFrom(validityStart(Date.now()), 30 * DAY);
  const packages: auth.PublishedConnectionPackage[] = [];
  for (let i = 0; i <= CONNECTION_PACKAGES; i++) {
    const { bytes, decryptionKey } = createConnectionPackage({
      clientKey: core.identity.clientKey,
      clientCredential: core.identity.credential,
      lifetime,
    });
    const hash = verifyConnectionPackage(bytes, { verifier: core.trust.verifier }).hash;
    core.store.db
      .insert(t.connectionPackageKeys)
      .values({ hash: toHex(hash), decryptionKey: buf(decryptionKey.privateBytes) })
      .run();
    packages.push({ connectionPackage: bytes, lastResort: i === CONNECTION_PACKAGES });
  }
  await core.transport.auth.publishConnectionPackages({
    signed: await core.identity.asSigned(auth.PublishConnectionPackagesTbs, AS.publishConnectionPackages, {
      packages,
    }),
  });
}

/** Key-value entry: a publish of AddPackages was started and has not been confirmed by the QS. */
const ADD_PACKAGES_DUE = "add-packages-due";

/** Whether the last publish of AddPackages did not go through (the next Welcome tries again). */
export function addPackagesDue(core: ClientCore): boolean {
  return core.store.getJson(ADD_PACKAGES_DUE) !== undefined;
}

/**
 * Publishes a fresh set of AddPackages (replacing the QS's), the last one marked last resort.
 * Their keys are stored first (a publish whose answer is lost may have reached the QS); until the
 * QS confirms, `addPackagesDue` says so.
 */
export async function publishAddPackages(core: ClientCore): Promise<void> {
  core.store.setJson(ADD_PACKAGES_DUE, true);
  const addPackages: Uint8Array[] = [];
  for (let i = 0; i <= ADD_PACKAGES; i++) {
    const lastResort = i === ADD_PACKAGES;
    const leaf = await core.identity.newLeaf(lastResort);
    const secrets = encryptLeafSecrets(
      core.account.friendshipEncryptionKey,
      "addPackage",
      leaf.leaf.bytes,
      core.identity.credential,
      leaf.signatureEncryptionKey,
    );
    const keyPackage = encodeKeyPackage(leaf.keyPackage);
    const ref = await makeKeyPackageRef(leaf.keyPackage, core.cs.hash);
    core.store.db
      .insert(t.addPackageKeys)
      .values({
        ref: toHex(ref),
        keyPackage: buf(keyPackage),
        privateKeyPackage: buf(encodePrivateKeyPackage(leaf.privateKeyPackage)),
        leafSeed: buf(leaf.leafKey.exportSeed()),
        leafCredential: buf(leaf.leaf.bytes),
        signatureEncryptionKey: buf(leaf.signatureEncryptionKey),
        lastResort,
      })
      .run();
    addPackages.push(encodeAddPackage({ keyPackage, ...secrets }));
  }
  await core.transport.queue.publishAddPackages({
    signed: await core.identity.qsSigned(queue.PublishAddPackagesTbs, QS.publishAddPackages, { addPackages }),
  });
  core.store.deleteKey(ADD_PACKAGES_DUE);
}

/**
 * Deletes this user everywhere: the QS user record (its queues and AddPackages go with it, so
 * groups learn through the DS that this client must be removed) and the AS user (credentials,
 * handles' packages, connection queues). The store keeps no account afterwards.
 */
export async function deleteAccount(core: ClientCore): Promise<void> {
  const qsUserKey = SigningKey.fromSeed(core.account.qsUserKeySeed);
  await core.transport.queue.deleteUser({
    signed: await signRequest(queue.DeleteUserTbs, QS.deleteUser, {}, qsUserKey, {
      $case: "qsUserId",
      value: core.account.qsUserId,
    }),
  });
  await core.transport.auth.deleteUser({
    signed: await core.identity.asSigned(auth.DeleteUserTbs, AS.deleteUser, {
      userId: wireUserId(core.identity.user),
    }),
  });
  core.store.deleteKey("account");
}
