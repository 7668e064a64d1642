import { aeadOpen, aeadSeal } from "./aead.js";
import { fromUtf8, utf8 } from "./bytes.js";
import { decodeAll, encodeWith } from "./codec.js";
import { CryptoError } from "./errors.js";
import { expandWithLabel, hkdfExtract } from "./hash.js";
import { AeadLabel, KdfLabel } from "./labels.js";

/** A sealed payload does not open under any configured key (wrong key, tampered, or moved row). */
export class PayloadSealError extends CryptoError {
  override readonly name = "PayloadSealError";
}

/** What one kind of sealed payload is for: its own key derivation and AEAD labels. */
export interface PayloadSealPurpose {
  /** ExpandWithLabel label deriving the sealing key from the service secret. */
  keyLabel: string;
  /** AEAD label of the ciphertexts (a payload of one purpose never opens as another). */
  aeadLabel: string;
}

/** Transactional-outbox rows (messages committed but not yet relayed to the bus). */
export const OUTBOX_PAYLOAD: PayloadSealPurpose = {
  keyLabel: KdfLabel.OutboxPayloadKey,
  aeadLabel: AeadLabel.OutboxPayload,
};
/** Messages stored by the embedded (database-backed) bus. */
export const BUS_PAYLOAD: PayloadSealPurpose = {
  keyLabel: KdfLabel.BusPayloadKey,
  aeadLabel: AeadLabel.BusPayload,
};

/**
 * Seals payloads a service keeps in its database only until they are handed on (outbox rows,
 * embedded-bus messages). Deleted rows survive in the database's files and WAL until overwritten,
 * so the payload must be unreadable without a key that is not in the database: the key is derived
 * (HKDF, own label per purpose) from a service secret held outside it. Each ciphertext is bound to
 * its row's identity by associated data, so sealed payloads cannot be swapped between rows. The
 * key-committing AEAD makes a ciphertext open under exactly one key; keys derived from previous
 * secrets (rotation) still open old rows.
 */
export class PayloadSealer {
  readonly #purpose: PayloadSealPurpose;
  readonly #secretName: string;
  readonly #keys: Uint8Array[];

  /**
   * `secretName`: where the secret comes from (e.g. DS_REPLAY_MARKER_KEY), named in errors;
   * `secret`: the current service secret (at least 16 bytes); `previous`: older ones still opened.
   */
  constructor(
    purpose: PayloadSealPurpose,
    secretName: string,
    secret: Uint8Array,
    previous: readonly Uint8Array[] = [],
  ) {
    this.#purpose = purpose;
    this.#secretName = secretName;
    this.#keys = [secret, ...previous].map((s, i) => {
      if (s.length < 16) {
        throw new PayloadSealError(
          `${secretName}${i === 0 ? "" : " (previous)"} must be at least 16 bytes to seal payloads`,
        );
      }
      // Extract first: the service secret may be text of any length, not a uniform 32-byte key.
      return expandWithLabel(hkdfExtract(new Uint8Array(0), s), purpose.keyLabel, new Uint8Array(0), 32);
    });
  }

  /** Seals `plaintext` under the current key, bound to `aad` (the row's identity). */
  seal(plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    return aeadSeal(this.#keys[0] as Uint8Array, this.#purpose.aeadLabel, plaintext, aad);
  }

  /**
   * Opens {@link seal}'s output with the current or a previous key. PayloadSealError naming `what`
   * and the secret when none opens it (sealed under another secret, tampered, or another row's).
   */
  open(ciphertext: Uint8Array, aad: Uint8Array, what: string): Uint8Array {
    let first: unknown;
    for (const key of this.#keys) {
      try {
        return aeadOpen(key, this.#purpose.aeadLabel, ciphertext, aad);
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
        first ??= error;
      }
    }
    const reason = first instanceof Error ? first.message : String(first);
    const keys = this.#keys.length > 1 ? `${this.#secretName} or its previous value` : this.#secretName;
    throw new PayloadSealError(`${what} does not open under the key derived from ${keys}: ${reason}`);
  }
}

/** A bus message as sealed at rest: the body and its headers (which may name peers). */
export interface SealableMessage {
  data: Uint8Array;
  headers: Record<string, string>;
}

const MESSAGE_VERSION = 1;

/**
 * Seals a bus message's body and headers together, bound to its dedupe id and subject (which stay
 * in the clear: the relay and the bus route and dedupe by them).
 */
export function sealMessage(
  sealer: PayloadSealer,
  id: string,
  subject: string,
  message: SealableMessage,
): Uint8Array {
  const plaintext = encodeWith((w) =>
    w
      .u8(MESSAGE_VERSION)
      .vec(utf8(JSON.stringify(message.headers)), 4, "headers")
      .vec(message.data, 4, "data"),
  );
  return sealer.seal(plaintext, messageAad(id, subject));
}

/** Opens {@link sealMessage}'s output; PayloadSealError naming `what` when it does not open. */
export function openMessage(
  sealer: PayloadSealer,
  id: string,
  subject: string,
  sealed: Uint8Array,
  what: string,
): SealableMessage {
  const plaintext = sealer.open(sealed, messageAad(id, subject), what);
  return decodeAll(plaintext, "SealedMessage", (r) => {
    const version = r.u8("version");
    if (version !== MESSAGE_VERSION) r.fail("version", `unsupported ${version}`);
    const headers = JSON.parse(fromUtf8(r.vec("headers", 4))) as Record<string, string>;
    return { headers, data: new Uint8Array(r.vec("data", 4)) };
  });
}

function messageAad(id: string, subject: string): Uint8Array {
  return encodeWith((w) => w.vec(utf8(id), 4, "id").vec(utf8(subject), 4, "subject"));
}
