import {
  decodeKeyText,
  expandWithLabel,
  hmacSha256,
  KdfLabel,
  KeyEncryptionKeys,
  toHex,
} from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import {
  createServerSetup,
  decodeLoginState,
  encodeLoginState,
  type LoginState,
  OpaqueServer,
  opaqueReady,
} from "./domain/opaque.js";
import { findServerSetup, putServerSetup, type StoredLogin } from "./store/passwords.js";

// Labels of the account-password secrets, each distinct from every label in libs/crypto's
// labels.ts, so nothing sealed or derived here opens or matches for another purpose.
/** AEAD label of the OPAQUE server setup sealed at rest. */
export const OPAQUE_SETUP_AEAD_LABEL = "AsOpaqueServerSetupAtRest";
/** AEAD label of a login state sealed at rest (between StartPasswordLogin and FinishPasswordLogin). */
export const LOGIN_STATE_AEAD_LABEL = "AsPasswordLoginStateAtRest";
/** Derivation label of the key of audit tags (keyed hashes naming a user in log lines). */
export const AUDIT_TAG_KDF_LABEL = "AsPasswordAuditTagKey";

/** The setup row's associated data: binds the ciphertext to its purpose. */
const SETUP_AAD = new TextEncoder().encode("opaque server setup");

/** Serialises the creation of the setup across replicas starting together ("phnxopaq"). */
const SETUP_LOCK = 0x70686e786f706171n;

/**
 * The AS's account-password secrets: the OPAQUE server (its setup stored in `opaque_server_setup`,
 * sealed under AS_KEY_ENCRYPTION_KEY, made on first start and resealed when the key rotates), the
 * sealing of login states, and the key of the audit tags that name a user in log lines.
 */
export class PasswordKeys {
  private constructor(
    readonly server: OpaqueServer,
    private readonly stateKeys: KeyEncryptionKeys,
    private readonly auditKey: Uint8Array,
  ) {}

  /**
   * Loads the server setup (making it on first start), resealing it under the current key when it
   * was sealed under AS_KEY_ENCRYPTION_KEY_PREVIOUS. KeyEncryptionError when no configured key
   * opens it: the AS then refuses to start rather than make a new setup, which would silently
   * invalidate every stored password.
   */
  static async open(db: Database, currentKek: string, previousKek?: string): Promise<PasswordKeys> {
    await opaqueReady();
    const keys = (aeadLabel: string) =>
      new KeyEncryptionKeys(
        { aeadLabel, kekIdLabel: KdfLabel.AsKeyEncryptionKeyId, variable: "AS_KEY_ENCRYPTION_KEY" },
        currentKek,
        previousKek,
      );
    const setupKeys = keys(OPAQUE_SETUP_AEAD_LABEL);
    const setup = await transaction(db, async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${SETUP_LOCK})`);
      const stored = await findServerSetup(tx);
      if (!stored) {
        const made = createServerSetup();
        const sealed = setupKeys.seal(made, SETUP_AAD);
        await putServerSetup(tx, { setup: sealed.bytes, setupKekId: sealed.kekId as Uint8Array });
        return made;
      }
      const sealed = { bytes: stored.setup, kekId: stored.setupKekId };
      const opened = setupKeys.open(sealed, SETUP_AAD, "the OPAQUE server setup");
      if (!setupKeys.isCurrent(sealed)) {
        const resealed = setupKeys.seal(opened, SETUP_AAD);
        await putServerSetup(tx, { setup: resealed.bytes, setupKekId: resealed.kekId as Uint8Array });
      }
      return opened;
    });
    const auditKey = expandWithLabel(
      decodeKeyText(currentKek, "AS_KEY_ENCRYPTION_KEY"),
      AUDIT_TAG_KDF_LABEL,
      new Uint8Array(0),
      32,
    );
    return new PasswordKeys(new OpaqueServer(setup), keys(LOGIN_STATE_AEAD_LABEL), auditKey);
  }

  /** Seals a login state, bound to its login id. */
  sealLoginState(loginId: Uint8Array, state: LoginState): StoredLogin {
    const sealed = this.stateKeys.seal(encodeLoginState(state), loginId);
    return { state: sealed.bytes, stateKekId: sealed.kekId as Uint8Array };
  }

  /** Opens a sealed login state; undefined when it does not open (another key, another row). */
  openLoginState(loginId: Uint8Array, stored: StoredLogin): LoginState | undefined {
    try {
      return decodeLoginState(
        this.stateKeys.open({ bytes: stored.state, kekId: stored.stateKekId }, loginId, "a login state"),
      );
    } catch {
      return undefined;
    }
  }

  /**
   * The audit tag of a user: 8 bytes of a keyed hash of the uuid, in hex. Repeated attempts on one
   * account show the same tag in the logs, and an operator holding the key can tell whose it is,
   * but the logs alone name no user.
   */
  auditTag(userUuid: Uint8Array): string {
    return toHex(hmacSha256(this.auditKey, userUuid).slice(0, 8));
  }
}
