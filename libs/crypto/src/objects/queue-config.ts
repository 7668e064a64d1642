import { bytesEqual } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { readDomain, UUID_LENGTH, writeDomain } from "../credentials/ids.js";
import { DecryptionError, UnknownSignerError } from "../errors.js";
import { KEY_ID_LENGTH } from "../hash.js";
import {
  HPKE_KEY_LENGTH,
  type HpkeKeyPair,
  type HpkePublicKey,
  hpkeKeyId,
  hpkeOpen,
  hpkeSeal,
} from "../hpke.js";
import { HpkeLabel, SignatureLabel } from "../labels.js";
import { SIGNATURE_LENGTH, type SigningKey, type VerifyingKey } from "../signature.js";

/**
 * Sealed queue config: how a client tells the DS where to deliver its messages without the DS
 * learning which queue that is. Only the QS domain travels in the clear (for routing); the QS
 * client record id and a signature by that record's key are HPKE-sealed to the QS's queue-config
 * encryption key. The signature proves the record owner made the config, so nobody can aim a
 * group's fan-out at someone else's queue. A fresh HPKE encapsulation per seal makes two sealed
 * configs of one client unlinkable.
 *
 * Encoding: version ‖ domain ‖ keyId ‖ enc ‖ vec16(ciphertext); plaintext = clientRecordId ‖ signature;
 * keyId = hpkeKeyId(QS key) tells the QS which of its (rotating) queue-config keys to use.
 * signature = SignWithLabel(record key, "QueueConfig", clientRecordId ‖ domain ‖ QS key).
 */

const VERSION = 1;

/** What the QS learns from a sealed queue config. */
export interface QueueConfig {
  domain: string;
  clientRecordId: Uint8Array;
}

function configTbs(clientRecordId: Uint8Array, domain: string, qsKey: Uint8Array): Uint8Array {
  return encodeWith((w) => {
    w.fixed(clientRecordId, UUID_LENGTH, "clientRecordId");
    writeDomain(w, domain);
    w.fixed(qsKey, HPKE_KEY_LENGTH, "qsKey");
  });
}

/** Client side: seals a queue config for the QS of `domain`. */
export function sealQueueConfig(options: {
  qsKey: HpkePublicKey;
  domain: string;
  clientRecordId: Uint8Array;
  recordKey: SigningKey;
}): Uint8Array {
  const { qsKey, domain, clientRecordId, recordKey } = options;
  const signature = recordKey.sign(
    SignatureLabel.QueueConfig,
    configTbs(clientRecordId, domain, qsKey.bytes),
  );
  const plaintext = encodeWith((w) =>
    w.fixed(clientRecordId, UUID_LENGTH, "clientRecordId").fixed(signature, SIGNATURE_LENGTH),
  );
  const aad = encodeWith((w) => writeDomain(w, domain));
  const sealed = hpkeSeal(qsKey, HpkeLabel.QueueConfig, plaintext, { aad });
  return encodeWith((w) => {
    w.u8(VERSION);
    writeDomain(w, domain);
    w.fixed(hpkeKeyId(qsKey), KEY_ID_LENGTH, "keyId")
      .fixed(sealed.enc, HPKE_KEY_LENGTH, "enc")
      .vec(sealed.ciphertext, 2, "ciphertext");
  });
}

function parse(bytes: Uint8Array) {
  return decodeAll(bytes, "SealedQueueConfig", (r) => {
    r.version([VERSION]);
    const domain = readDomain(r);
    const keyId = r.fixed("keyId", KEY_ID_LENGTH);
    return {
      domain,
      keyId,
      enc: r.fixed("enc", HPKE_KEY_LENGTH),
      ciphertext: r.vec("ciphertext", 2, { max: 1024 }),
    };
  });
}

/** DS side: the QS domain to route to (the only thing visible without the QS key). */
export function queueConfigDomain(sealed: Uint8Array): string {
  return parse(sealed).domain;
}

/** QS side: the id of the queue-config key the config was sealed to (pick the key pair by it). */
export function queueConfigKeyId(sealed: Uint8Array): Uint8Array {
  return parse(sealed).keyId;
}

/**
 * QS side: opens a sealed config and checks the record owner's signature. `recordKeyOf` returns
 * the verifying key of a QS client record (undefined if unknown → UnknownSignerError).
 * Throws DecryptionError, UnknownSignerError or BadSignatureError.
 */
export function openQueueConfig(
  qsKeyPair: HpkeKeyPair,
  sealed: Uint8Array,
  recordKeyOf: (clientRecordId: Uint8Array) => VerifyingKey | undefined,
): QueueConfig {
  const { domain, keyId, enc, ciphertext } = parse(sealed);
  if (!bytesEqual(keyId, hpkeKeyId(qsKeyPair.publicKey))) {
    throw new DecryptionError("queue config is sealed to another QS key");
  }
  const aad = encodeWith((w) => writeDomain(w, domain));
  const plaintext = hpkeOpen(qsKeyPair, HpkeLabel.QueueConfig, { enc, ciphertext }, { aad });
  const { clientRecordId, signature } = decodeAll(plaintext, "QueueConfig", (r) => ({
    clientRecordId: r.fixed("clientRecordId", UUID_LENGTH),
    signature: r.fixed("signature", SIGNATURE_LENGTH),
  }));
  const key = recordKeyOf(clientRecordId);
  if (!key) throw new UnknownSignerError("queue config names an unknown QS client record");
  key.verifyOrThrow(
    SignatureLabel.QueueConfig,
    configTbs(clientRecordId, domain, qsKeyPair.publicKey.bytes),
    signature,
    "queue config",
  );
  return { domain, clientRecordId };
}

/**
 * SealedPushToken: the client's push token (the protos' PushToken message, opaque here)
 * HPKE-sealed to the QS queue-config key, so the QS database holds no readable token; the QS
 * opens it only to send a notification. Encoding: version ‖ keyId ‖ enc ‖ vec16(ciphertext).
 */
export function sealPushToken(qsKey: HpkePublicKey, pushToken: Uint8Array): Uint8Array {
  const sealed = hpkeSeal(qsKey, HpkeLabel.PushToken, pushToken);
  return encodeWith((w) =>
    w
      .u8(VERSION)
      .fixed(hpkeKeyId(qsKey), KEY_ID_LENGTH, "keyId")
      .fixed(sealed.enc, HPKE_KEY_LENGTH, "enc")
      .vec(sealed.ciphertext, 2, "ciphertext", { max: 4096 }),
  );
}

/** QS side: opens a sealed push token; throws DecryptionError (also for another key's token). */
export function openPushToken(qsKeyPair: HpkeKeyPair, sealed: Uint8Array): Uint8Array {
  const { keyId, enc, ciphertext } = decodeAll(sealed, "SealedPushToken", (r) => {
    r.version([VERSION]);
    return {
      keyId: r.fixed("keyId", KEY_ID_LENGTH),
      enc: r.fixed("enc", HPKE_KEY_LENGTH),
      ciphertext: r.vec("ciphertext", 2, { max: 4096 }),
    };
  });
  if (!bytesEqual(keyId, hpkeKeyId(qsKeyPair.publicKey))) {
    throw new DecryptionError("push token is sealed to another QS key");
  }
  return hpkeOpen(qsKeyPair, HpkeLabel.PushToken, { enc, ciphertext });
}
