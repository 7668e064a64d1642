import { createCipheriv, createDecipheriv } from "node:crypto";
import { asBuffer, constantTimeEqual, randomBytes } from "./bytes.js";
import { encodeWith } from "./codec.js";
import { DecodeError, DecryptionError, InvalidInputError, UnsupportedVersionError } from "./errors.js";
import { expandWithLabel, hkdfExtract } from "./hash.js";

/**
 * Key-committing AEAD used for encryption at rest and for every symmetric object of the protocol.
 *
 * seal(key, label, pt, aad):
 *   nonce  = 32 random bytes
 *   prk    = HKDF-Extract(salt = nonce, ikm = key)
 *   encKey ‖ iv ‖ commitment = ExpandWithLabel(prk, label, "", 32 + 12 + 32)
 *   ct     = AES-256-GCM(encKey, iv, pt, aad = header ‖ vec32(aad))
 *   output = version(1) ‖ nonce ‖ commitment ‖ ct ‖ tag
 *
 * The commitment is a PRF output of (key, nonce, label): a ciphertext names one key, so it can never
 * decrypt under two keys (GCM alone allows that). The label separates uses: a group-state
 * ciphertext never opens as a queue message even under the same key. Every message has its own
 * derived GCM key and IV, so random nonces never collide in GCM.
 */

/** Length of every AEAD key in this package. */
export const AEAD_KEY_LENGTH = 32;
const VERSION = 1;
const NONCE_LENGTH = 32;
const COMMITMENT_LENGTH = 32;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
/** Bytes an AEAD ciphertext adds to its plaintext. */
export const AEAD_OVERHEAD = 1 + NONCE_LENGTH + COMMITMENT_LENGTH + TAG_LENGTH;

/** A fresh random AEAD key. */
export function generateAeadKey(): Uint8Array {
  return randomBytes(AEAD_KEY_LENGTH);
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_LENGTH) {
    throw new InvalidInputError(`AEAD key must be ${AEAD_KEY_LENGTH} bytes`);
  }
}

function derive(key: Uint8Array, nonce: Uint8Array, label: string) {
  const okm = expandWithLabel(
    hkdfExtract(nonce, key),
    label,
    new Uint8Array(0),
    32 + IV_LENGTH + COMMITMENT_LENGTH,
  );
  return {
    encKey: okm.subarray(0, 32),
    iv: okm.subarray(32, 32 + IV_LENGTH),
    commitment: okm.subarray(32 + IV_LENGTH),
  };
}

function gcmAad(header: Uint8Array, aad: Uint8Array): Uint8Array {
  return encodeWith((w) => w.fixed(header, header.length).vec(aad, 4, "aad"));
}

/** Encrypts `plaintext` under `key` for the purpose `label`, authenticating `aad`. */
export function aeadSeal(
  key: Uint8Array,
  label: string,
  plaintext: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
  nonce: Uint8Array = randomBytes(NONCE_LENGTH),
): Uint8Array {
  checkKey(key);
  if (nonce.length !== NONCE_LENGTH) throw new InvalidInputError(`AEAD nonce must be ${NONCE_LENGTH} bytes`);
  const { encKey, iv, commitment } = derive(key, nonce, label);
  const header = encodeWith((w) =>
    w.u8(VERSION).fixed(nonce, NONCE_LENGTH).fixed(commitment, COMMITMENT_LENGTH),
  );
  const cipher = createCipheriv("aes-256-gcm", asBuffer(encKey), asBuffer(iv), { authTagLength: TAG_LENGTH });
  cipher.setAAD(gcmAad(header, aad));
  const body = cipher.update(plaintext);
  cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(header.length + body.length + TAG_LENGTH);
  out.set(header, 0);
  out.set(body, header.length);
  out.set(tag, header.length + body.length);
  return out;
}

/** Decrypts aeadSeal's output; throws DecryptionError for a wrong key, label, AAD or any tampering. */
export function aeadOpen(
  key: Uint8Array,
  label: string,
  ciphertext: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): Uint8Array {
  checkKey(key);
  const HEADER = 1 + NONCE_LENGTH + COMMITMENT_LENGTH;
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < HEADER + TAG_LENGTH) {
    throw new DecodeError("AeadCiphertext", "truncated: shorter than header and tag");
  }
  if (ciphertext[0] !== VERSION)
    throw new UnsupportedVersionError("AeadCiphertext.version", ciphertext[0] as number);
  // Views, not copies: group state ciphertexts can be large.
  const parsed = {
    nonce: ciphertext.subarray(1, 1 + NONCE_LENGTH),
    commitment: ciphertext.subarray(1 + NONCE_LENGTH, HEADER),
    body: ciphertext.subarray(HEADER),
  };
  const { encKey, iv, commitment } = derive(key, parsed.nonce, label);
  if (!constantTimeEqual(commitment, parsed.commitment)) {
    throw new DecryptionError(`${label}: key commitment does not match (wrong key or label)`);
  }
  const header = ciphertext.subarray(0, HEADER);
  const split = parsed.body.length - TAG_LENGTH;
  try {
    const decipher = createDecipheriv("aes-256-gcm", asBuffer(encKey), asBuffer(iv), {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(gcmAad(header, aad));
    decipher.setAuthTag(parsed.body.subarray(split));
    const head = decipher.update(parsed.body.subarray(0, split));
    const tail = decipher.final();
    return tail.length === 0 ? new Uint8Array(head) : new Uint8Array(Buffer.concat([head, tail]));
  } catch {
    throw new DecryptionError(`${label}: authentication failed (tampered ciphertext or wrong AAD)`);
  }
}
