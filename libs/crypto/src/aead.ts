import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import { constantTimeEqual, randomBytes, utf8 } from "./bytes.js";
import { DecodeError, DecryptionError, InvalidInputError, UnsupportedVersionError } from "./errors.js";
import { LABEL_PREFIX } from "./hash.js";

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

const OKM_LENGTH = 32 + IV_LENGTH + COMMITMENT_LENGTH;
const HEADER_LENGTH = 1 + NONCE_LENGTH + COMMITMENT_LENGTH;

/**
 * `info ‖ counter` of ExpandWithLabel(prk, label, "", OKM_LENGTH) (hash.ts): u16 length ‖
 * vec8("Phoenix " + label) ‖ vec32("") and one spare byte for the HKDF block counter. Labels
 * are the package's constants, so the few buffers are kept (bounded all the same).
 */
const expandInfo = new Map<string, Uint8Array>();

function expandInfoOf(label: string): Uint8Array {
  let info = expandInfo.get(label);
  if (info === undefined) {
    const name = utf8(LABEL_PREFIX + label);
    if (name.length > 0xff) throw new InvalidInputError("AEAD label too long");
    info = new Uint8Array(2 + 1 + name.length + 4);
    info[0] = OKM_LENGTH >>> 8;
    info[1] = OKM_LENGTH & 0xff;
    info[2] = name.length;
    info.set(name, 3);
    // vec32 of the empty context: four zero bytes.
    if (expandInfo.size < 64) expandInfo.set(label, info);
  }
  return info;
}

/**
 * encKey ‖ iv ‖ commitment = ExpandWithLabel(HKDF-Extract(salt = nonce, ikm = key), label, "", 76):
 * HKDF with the KDFLabel as its info, in one native call (four HMAC objects cost twice as much);
 * the test vectors pin it to hash.ts's hkdfExtract / expandWithLabel.
 */
function derive(key: Uint8Array, nonce: Uint8Array, label: string) {
  const okm = new Uint8Array(hkdfSync("sha256", key, nonce, expandInfoOf(label), OKM_LENGTH));
  return {
    okm,
    encKey: okm.subarray(0, 32),
    iv: okm.subarray(32, 32 + IV_LENGTH),
    commitment: okm.subarray(32 + IV_LENGTH, OKM_LENGTH),
  };
}

/** The GCM AAD: header ‖ vec32(aad). */
function gcmAad(header: Uint8Array, aad: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + 4 + aad.length);
  out.set(header, 0);
  new DataView(out.buffer).setUint32(header.length, aad.length);
  out.set(aad, header.length + 4);
  return out;
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
  const { okm, encKey, iv, commitment } = derive(key, nonce, label);
  const body = plaintext.length;
  const out = new Uint8Array(HEADER_LENGTH + body + TAG_LENGTH);
  out[0] = VERSION;
  out.set(nonce, 1);
  out.set(commitment, 1 + NONCE_LENGTH);
  const cipher = createCipheriv("aes-256-gcm", encKey, iv, { authTagLength: TAG_LENGTH });
  okm.fill(0);
  cipher.setAAD(gcmAad(out.subarray(0, HEADER_LENGTH), aad));
  const encrypted = cipher.update(plaintext);
  const tail = cipher.final();
  out.set(encrypted, HEADER_LENGTH);
  out.set(tail, HEADER_LENGTH + encrypted.length);
  out.set(cipher.getAuthTag(), HEADER_LENGTH + body);
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
  const HEADER = HEADER_LENGTH;
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
  const { okm, encKey, iv, commitment } = derive(key, parsed.nonce, label);
  if (!constantTimeEqual(commitment, parsed.commitment)) {
    okm.fill(0);
    throw new DecryptionError(`${label}: key commitment does not match (wrong key or label)`);
  }
  const header = ciphertext.subarray(0, HEADER);
  const split = parsed.body.length - TAG_LENGTH;
  try {
    const decipher = createDecipheriv("aes-256-gcm", encKey, iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(gcmAad(header, aad));
    decipher.setAuthTag(parsed.body.subarray(split));
    const head = decipher.update(parsed.body.subarray(0, split));
    const tail = decipher.final();
    return tail.length === 0 ? new Uint8Array(head) : new Uint8Array(Buffer.concat([head, tail]));
  } catch {
    throw new DecryptionError(`${label}: authentication failed (tampered ciphertext or wrong AAD)`);
  } finally {
    okm.fill(0);
  }
}
