import {
  AsCredential,
  AsIntermediateCredential,
  bytesEqual,
  type ClientCredential,
  CredentialVerifier,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import {
  type AsKeyPolicy,
  isFreshSigner,
  issueIntermediate,
  issueRoot,
  type KeyedCredential,
} from "./domain/as-keys.js";
import { type KeyEncryption, openStoredKey, type StoredSigningKey } from "./domain/key-encryption.js";
import {
  type AsCredentialRow,
  findAsCredential,
  insertAsCredential,
  listRevokedFingerprints,
  listStoredSigningKeys,
  listValidAsCredentials,
  revokedAmong,
  revokeFingerprint,
  updateStoredSigningKey,
} from "./store/as-credentials.js";

/** Serialises key creation across replicas ("phnxaskr"). */
const KEYRING_LOCK = 0x70686e7861736b72n;

/**
 * Why a client credential no longer stands: revoked itself, signed by a revoked (or unknown)
 * intermediate, or under a revoked root.
 */
export type ChainRevocation = "client" | "intermediate" | "root" | "unknown-intermediate";

/** What GetAsCredentials serves. */
export interface PublicAsCredentials {
  roots: Uint8Array[];
  intermediates: Uint8Array[];
  revoked: Uint8Array[];
}

export interface AsKeyringOptions {
  db: Database;
  domain: string;
  policy: AsKeyPolicy;
  /** The operator's root; absent: the AS creates and stores its own. */
  configuredRoot?: KeyedCredential<AsCredential>;
  /** Encrypts the signing keys stored in the database (AS_KEY_ENCRYPTION_KEY). */
  keyEncryption: KeyEncryption;
  now: () => number;
}

/**
 * The AS key material: root and intermediate credentials in the database (shared by every
 * replica), the current signing intermediate cached in memory. The intermediate rotates without
 * downtime: a new one is made when the current one is older than the rotation age (or revoked, or
 * too close to its end), and older ones stay published until they expire so credentials they
 * signed keep verifying.
 */
export class AsKeyring {
  private signer: (KeyedCredential<AsIntermediateCredential> & { createdAt: number }) | undefined;
  /** Intermediate fingerprint (hex) → its root's fingerprint: immutable facts, safe to cache. */
  private readonly rootOf = new Map<string, Uint8Array>();

  constructor(private readonly options: AsKeyringOptions) {}

  /**
   * Brings stored signing keys under the configured key encryption (sealing plaintext seeds left
   * by older versions, resealing ones under the previous key), then creates the root and
   * intermediate on first start (or loads them). KeyEncryptionError if a stored key cannot be
   * opened with the configuration.
   */
  async init(): Promise<void> {
    await this.resealStoredKeys();
    await this.currentSigner();
  }

  private async resealStoredKeys(): Promise<void> {
    const { db, keyEncryption } = this.options;
    await transaction(db, async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${KEYRING_LOCK})`);
      for (const row of await listStoredSigningKeys(tx)) {
        const seed = openStoredKey(row, row.fingerprint, keyEncryption);
        if (!keyEncryption.isCurrent(row)) {
          await updateStoredSigningKey(tx, row.fingerprint, keyEncryption.seal(seed, row.fingerprint));
        }
      }
    });
  }

  /** How a new signing key is stored: sealed under the current key-encryption key. */
  private storedKey(seed: Uint8Array, fingerprint: Uint8Array): StoredSigningKey {
    return this.options.keyEncryption.seal(seed, fingerprint);
  }

  private signingKeyOf(row: AsCredentialRow & { signingKey: Uint8Array }): SigningKey {
    return SigningKey.fromSeed(
      openStoredKey(
        { signingKey: row.signingKey, signingKeyKekId: row.signingKeyKekId },
        row.fingerprint,
        this.options.keyEncryption,
      ),
    );
  }

  /** The intermediate that signs client credentials now. */
  async currentSigner(): Promise<KeyedCredential<AsIntermediateCredential>> {
    const now = this.options.now();
    const cached = this.signer;
    if (cached && this.isFresh(cached.createdAt, cached.credential.expiration.notAfter, now)) return cached;
    this.signer = await this.ensure(now, false);
    return this.signer;
  }

  /** Makes a new intermediate at once (operator rotation); the old one stays valid. */
  async rotate(): Promise<AsIntermediateCredential> {
    this.signer = await this.ensure(this.options.now(), true);
    return this.signer.credential;
  }

  /** Puts a credential fingerprint on the revocation list; a revoked signer is replaced. */
  async revoke(fingerprint: Uint8Array): Promise<boolean> {
    const added = await revokeFingerprint(this.options.db, fingerprint, this.options.now());
    if (this.signer && bytesEqual(this.signer.credential.fingerprint, fingerprint)) this.signer = undefined;
    return added;
  }

  /**
   * Checks the revocation list for a stored client credential and the AS credentials above it, in
   * one query on `db` (the caller's transaction), so a revocation made on any replica counts at
   * once. Returns the revoked link, or undefined when the chain stands.
   */
  async revocationOf(db: Database, credential: ClientCredential): Promise<ChainRevocation | undefined> {
    const intermediate = credential.signerFingerprint;
    const key = toHex(intermediate);
    let root = this.rootOf.get(key);
    if (!root) {
      const row = await findAsCredential(db, intermediate);
      if (row?.kind !== "intermediate") return "unknown-intermediate";
      root = AsIntermediateCredential.decode(row.credential).signerFingerprint;
      this.rootOf.set(key, root);
    }
    const revoked = await revokedAmong(db, [credential.fingerprint, intermediate, root]);
    const has = (f: Uint8Array) => revoked.some((r) => bytesEqual(r, f));
    if (has(credential.fingerprint)) return "client";
    if (has(intermediate)) return "intermediate";
    if (has(root)) return "root";
    return undefined;
  }

  /** Every valid, unrevoked root and intermediate, and all revoked fingerprints. */
  async publicCredentials(): Promise<PublicAsCredentials> {
    const now = new Date(this.options.now());
    const { db } = this.options;
    const [roots, intermediates, revoked] = await Promise.all([
      listValidAsCredentials(db, "root", now),
      listValidAsCredentials(db, "intermediate", now),
      listRevokedFingerprints(db),
    ]);
    const isRevoked = (row: AsCredentialRow) => revoked.some((f) => bytesEqual(f, row.fingerprint));
    return {
      roots: roots.filter((r) => !isRevoked(r)).map((r) => r.credential),
      intermediates: intermediates.filter((r) => !isRevoked(r)).map((r) => r.credential),
      revoked,
    };
  }

  /**
   * A verifier trusting this domain's valid roots and intermediates, with the revocation list, for
   * checking client credentials inside requests (e.g. in connection packages).
   */
  async verifier(): Promise<CredentialVerifier> {
    const now = this.options.now();
    const published = await this.publicCredentials();
    const verifier = new CredentialVerifier({ revoked: published.revoked, now: () => now });
    for (const root of published.roots) verifier.addRoot(AsCredential.decode(root), now);
    for (const intermediate of published.intermediates) {
      verifier.addIntermediate(AsIntermediateCredential.decode(intermediate), now);
    }
    return verifier;
  }

  private isFresh(createdAt: number, notAfter: number, now: number): boolean {
    const { policy } = this.options;
    return isFreshSigner({ createdAt, notAfter }, now, policy.rotateAfterMs, policy.clientMaxLifetimeMs);
  }

  private async ensure(now: number, forceRotation: boolean) {
    const { db, domain, policy, configuredRoot } = this.options;
    return transaction(db, async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${KEYRING_LOCK})`);
      const at = new Date(now);
      const revoked = await listRevokedFingerprints(tx);
      const usable = (row: AsCredentialRow) =>
        row.signingKey !== null && !revoked.some((f) => bytesEqual(f, row.fingerprint));

      let root: KeyedCredential<AsCredential> | undefined;
      if (configuredRoot) {
        root = configuredRoot;
        await insertAsCredential(
          tx,
          rootRow(configuredRoot, { signingKey: null, signingKeyKekId: null }, at),
        );
      } else {
        const row = (await listValidAsCredentials(tx, "root", at)).find(
          (r) => usable(r) && r.notAfter.getTime() - now >= policy.intermediateLifetimeMs / 2,
        );
        if (row?.signingKey) {
          root = {
            key: this.signingKeyOf({ ...row, signingKey: row.signingKey }),
            credential: AsCredential.decode(row.credential),
          };
        } else {
          root = issueRoot(domain, now, policy);
          const stored = this.storedKey(root.key.exportSeed(), root.credential.fingerprint);
          await insertAsCredential(tx, rootRow(root, stored, at));
        }
      }

      if (!forceRotation) {
        const rows = await listValidAsCredentials(tx, "intermediate", at);
        const row = rows.find(
          (r) => usable(r) && this.isFresh(r.createdAt.getTime(), r.notAfter.getTime(), now),
        );
        if (row?.signingKey) {
          return {
            key: this.signingKeyOf({ ...row, signingKey: row.signingKey }),
            credential: AsIntermediateCredential.decode(row.credential),
            createdAt: row.createdAt.getTime(),
          };
        }
      }
      const intermediate = issueIntermediate(root, now, policy);
      const { credential } = intermediate;
      await insertAsCredential(tx, {
        fingerprint: credential.fingerprint,
        kind: "intermediate",
        credential: credential.bytes,
        ...this.storedKey(intermediate.key.exportSeed(), credential.fingerprint),
        notBefore: new Date(credential.expiration.notBefore),
        notAfter: new Date(credential.expiration.notAfter),
        createdAt: at,
      });
      return { ...intermediate, createdAt: now };
    });
  }
}

function rootRow(
  root: KeyedCredential<AsCredential>,
  stored: StoredSigningKey | { signingKey: null; signingKeyKekId: null },
  createdAt: Date,
): AsCredentialRow {
  const { credential } = root;
  return {
    fingerprint: credential.fingerprint,
    kind: "root",
    credential: credential.bytes,
    ...stored,
    notBefore: new Date(credential.expiration.notBefore),
    notAfter: new Date(credential.expiration.notAfter),
    createdAt,
  };
}
