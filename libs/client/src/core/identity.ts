// Who this client is and what it signs with: its user id, client key and credential, the
// friendship package it hands contacts, its QS queue reference, and fresh leaves for groups.
import {
  ClientCredential,
  type ClientCredential as ClientCredentialT,
  expirationFrom,
  type FriendshipPackage,
  formatUserId,
  HpkeKeyPair,
  HpkePublicKey,
  LeafCredential,
  SigningKey,
  sealQueueConfig,
  type UserId,
} from "@phoenix/crypto";
import { createKeyPackage } from "@phoenix/mls";
import { common } from "@phoenix/proto";
import type { CiphersuiteImpl, KeyPackage, PrivateKeyPackage } from "ts-mls";
import type { Account } from "../account.js";
import { DAY } from "../constants.js";
import { signRequest, wireUserId } from "../protocol/helpers.js";

/** A freshly made leaf for one group: leaf credential, signature key and KeyPackage. */
export interface NewLeaf {
  leafKey: SigningKey;
  leaf: LeafCredential;
  signatureEncryptionKey: Uint8Array;
  keyPackage: KeyPackage;
  privateKeyPackage: PrivateKeyPackage;
}

/** A request body of one of the `…Tbs` types, without the header signing adds. */
type TbsBody<T> = Omit<T, "header">;
type TbsType<T extends { header: common.RequestHeader | undefined }> = Parameters<typeof signRequest<T>>[0];

/**
 * This client's identity and keys (from its account), and requests signed as it. The account's
 * keys never change, so each is imported once (a key import costs as much as a signature).
 */
export class ClientIdentity {
  private imported?: {
    clientKey: SigningKey;
    qsClientKey: SigningKey;
    qsQueueKey: HpkeKeyPair;
    connectionQueueKey: HpkeKeyPair;
    credential: ClientCredentialT;
  };

  constructor(
    readonly account: Account,
    private readonly cs: CiphersuiteImpl,
  ) {}

  /** This user's id, `uuid@domain`. */
  get userId(): string {
    return formatUserId(this.user);
  }

  get user(): UserId {
    return { uuid: this.account.userUuid, domain: this.account.domain };
  }

  private get keys(): NonNullable<ClientIdentity["imported"]> {
    this.imported ??= {
      clientKey: SigningKey.fromSeed(this.account.clientKeySeed),
      qsClientKey: SigningKey.fromSeed(this.account.qsClientKeySeed),
      qsQueueKey: HpkeKeyPair.fromPrivateBytes(this.account.qsQueueKey),
      connectionQueueKey: HpkeKeyPair.fromPrivateBytes(this.account.connectionQueueKey),
      credential: ClientCredential.decode(this.account.clientCredential),
    };
    return this.imported;
  }

  get clientKey(): SigningKey {
    return this.keys.clientKey;
  }

  get credential(): ClientCredentialT {
    return this.keys.credential;
  }

  /** The private key of this client's QS queue (its queue ratchet's HPKE key). */
  get qsQueueKey(): HpkeKeyPair {
    return this.keys.qsQueueKey;
  }

  /** The private key of this client's AS connection queue. */
  get connectionQueueKey(): HpkeKeyPair {
    return this.keys.connectionQueueKey;
  }

  get friendshipPackage(): FriendshipPackage {
    return {
      friendshipToken: this.account.friendshipToken,
      friendshipEncryptionKey: this.account.friendshipEncryptionKey,
      userProfileKey: this.account.profileKey,
    };
  }

  /** A fresh sealed queue config naming this client's QS queue (what the DS stores per member). */
  qsReference(): common.QsReference {
    return {
      domain: this.account.domain,
      sealedQueueConfig: sealQueueConfig({
        qsKey: HpkePublicKey.fromBytes(this.account.qsConfigKey),
        domain: this.account.domain,
        clientRecordId: this.account.qsClientId,
        recordKey: this.keys.qsClientKey,
      }),
    };
  }

  /** A new leaf: fresh signature key, a fresh pseudonym (unlinkable across groups), a KeyPackage. */
  async newLeaf(lastResort = false): Promise<NewLeaf> {
    const leafKey = SigningKey.generate();
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: this.clientKey,
      clientCredential: this.credential,
      leafKey: leafKey.verifyingKey,
      expiration: expirationFrom(Date.now(), 60 * DAY),
    });
    const kp = await createKeyPackage({
      cipherSuite: this.cs,
      credential: { credentialType: "basic", identity: leaf.bytes },
      queueConfig: common.QsReference.encode(this.qsReference()).finish(),
      lastResort,
      lifetimeSeconds: 59 * 24 * 3600,
      signatureKeyPair: { signKey: leafKey.exportSeed(), publicKey: leafKey.publicKey },
    });
    return {
      leafKey,
      leaf,
      signatureEncryptionKey,
      keyPackage: kp.publicPackage,
      privateKeyPackage: kp.privatePackage,
    };
  }

  /** A request to the AS signed with the client key. */
  asSigned<T extends { header: common.RequestHeader | undefined }>(
    type: TbsType<T>,
    method: { path: string },
    body: TbsBody<T>,
  ): Promise<common.Signed> {
    const sender = {
      $case: "client" as const,
      value: { user: wireUserId(this.user), clientUuid: this.account.clientUuid },
    };
    return signRequest(type, method, body, this.clientKey, sender);
  }

  /** A request to the QS signed with the pseudonymous QS client record key. */
  qsSigned<T extends { header: common.RequestHeader | undefined }>(
    type: TbsType<T>,
    method: { path: string },
    body: TbsBody<T>,
  ): Promise<common.Signed> {
    return signRequest(type, method, body, this.keys.qsClientKey, {
      $case: "qsClientId",
      value: this.account.qsClientId,
    });
  }
}
