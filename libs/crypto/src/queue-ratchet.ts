import { createHmac } from "node:crypto";
import { aeadOpen, aeadSeal } from "./aead.js";
import { randomBytes, utf8, wipe } from "./bytes.js";
import { decodeAll, encodeWith } from "./codec.js";
import {
  DecryptionError,
  InvalidInputError,
  MissedKeyUpdateError,
  SequenceGapError,
  StaleSequenceError,
} from "./errors.js";
import { hkdfExtract, LABEL_PREFIX } from "./hash.js";
import { type HpkeKeyPair, type HpkePublicKey, hpkeOpen, hpkeSeal } from "./hpke.js";
import { AeadLabel, HpkeLabel, KdfLabel } from "./labels.js";

/**
 * The queue ratchet: how the QS encrypts every message it puts into a client's queue so that only
 * the queue owner can read it, with forward secrecy and post-compromise security.
 *
 * State: (secret, next sequence number, epoch). For the message at sequence number n:
 *   messageKey = ExpandWithLabel(secret, "QueueRatchetMessageKey", n ‖ queue, 32)
 *   secret'    = ExpandWithLabel(secret, "QueueRatchetNext", n ‖ queue, 32)
 * The old secret and the message key are deleted after use (forward secrecy). The header
 * (version, n, epoch, kind) and the queue context are bound into the AEAD.
 *
 * Key update (post-compromise security): the QS samples 32 fresh random bytes r, sends r
 * HPKE-encrypted to the queue encryption key as the message at n, and both sides continue with
 *   secret' = HKDF-Extract(salt = ExpandWithLabel(secret, "QueueRatchetRotation", n ‖ queue, 32), ikm = r)
 * and epoch + 1. Someone who stole the old state but not the queue owner's HPKE private key cannot
 * follow. The very first message (n = 0, kind Init) carries the initial secret the same way.
 *
 * Gap rule: the QS assigns sequence numbers without holes and deletes only messages the client
 * acknowledged, so a client normally sees n = expected. Messages older than expected are refused
 * (StaleSequenceError; their keys are gone — duplicates from at-least-once delivery land here). A
 * jump ahead means messages were lost server-side: it is accepted only within the current epoch
 * (the message's epoch equals the receiver's, so no key update was among the lost ones) and up to
 * `maxGap` messages; the skipped keys are derived and discarded at once, never stored. A jump over a
 * lost key update cannot be recovered (MissedKeyUpdateError): the client must set up a new queue.
 * A message that fails to decrypt leaves the receiver's state unchanged.
 */

const VERSION = 1;
const SECRET_LENGTH = 32;
/** Default number of lost messages a receiver skips over. */
export const DEFAULT_MAX_QUEUE_GAP = 1000;
const MAX_CONTEXT = 255;
const MAX_CIPHERTEXT = 16 * 1024 * 1024;

/** What a queue message carries. */
export const QueueMessageKind = { Init: 0, Message: 1, Update: 2 } as const;
export type QueueMessageKind = (typeof QueueMessageKind)[keyof typeof QueueMessageKind];

/** One encrypted queue entry as stored by the QS and fetched by the client. */
export interface QueueMessage {
  sequenceNumber: number;
  epoch: number;
  kind: QueueMessageKind;
  ciphertext: Uint8Array;
}

function checkU64(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new InvalidInputError(`u64 out of range: ${field} ${value}`);
}

function checkU32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new InvalidInputError(`u32 out of range: ${field} ${value}`);
  }
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

/** version ‖ u64 n ‖ u32 epoch ‖ u8 kind ‖ vec8(context): the AAD of every queue message. */
function header(m: Pick<QueueMessage, "sequenceNumber" | "epoch" | "kind">, context: Uint8Array): Uint8Array {
  checkU64(m.sequenceNumber, "sequenceNumber");
  checkU32(m.epoch, "epoch");
  if (context.length > MAX_CONTEXT) throw new InvalidInputError("queue context too long");
  const out = new Uint8Array(1 + 8 + 4 + 1 + 1 + context.length);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  setU64(view, 1, m.sequenceNumber);
  view.setUint32(9, m.epoch);
  out[13] = m.kind;
  out[14] = context.length;
  out.set(context, 15);
  return out;
}

const LABELS = {
  messageKey: utf8(LABEL_PREFIX + KdfLabel.QueueRatchetMessageKey),
  next: utf8(LABEL_PREFIX + KdfLabel.QueueRatchetNext),
  rotation: utf8(LABEL_PREFIX + KdfLabel.QueueRatchetRotation),
};

/**
 * ExpandWithLabel(secret, label, position(n, context), 32) of hash.ts, where position is
 * u64 n ‖ vec8(context): with a 32-byte output HKDF-Expand is the single block
 * HMAC(secret, info ‖ 0x01), info = u16 32 ‖ vec8(label) ‖ vec32(position). Built in one buffer
 * (the ratchet runs once per delivered message); queue-ratchet tests pin it to expandWithLabel.
 */
function ratchetExpand(secret: Uint8Array, label: Uint8Array, n: number, context: Uint8Array): Uint8Array {
  checkU64(n, "sequenceNumber");
  if (context.length > MAX_CONTEXT) throw new InvalidInputError("queue context too long");
  const positionLength = 8 + 1 + context.length;
  const info = new Uint8Array(2 + 1 + label.length + 4 + positionLength + 1);
  const view = new DataView(info.buffer);
  view.setUint16(0, SECRET_LENGTH);
  info[2] = label.length;
  info.set(label, 3);
  let offset = 3 + label.length;
  view.setUint32(offset, positionLength);
  setU64(view, offset + 4, n);
  offset += 12;
  info[offset] = context.length;
  info.set(context, offset + 1);
  info[info.length - 1] = 1;
  const out = createHmac("sha256", secret).update(info).digest();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function messageKey(secret: Uint8Array, n: number, context: Uint8Array): Uint8Array {
  return ratchetExpand(secret, LABELS.messageKey, n, context);
}

function nextSecret(secret: Uint8Array, n: number, context: Uint8Array): Uint8Array {
  return ratchetExpand(secret, LABELS.next, n, context);
}

function rotatedSecret(secret: Uint8Array, n: number, context: Uint8Array, fresh: Uint8Array): Uint8Array {
  const rotationKey = ratchetExpand(secret, LABELS.rotation, n, context);
  const rotated = hkdfExtract(rotationKey, fresh);
  wipe(rotationKey);
  return rotated;
}

const MESSAGE_PREFIX = 1 + 8 + 4 + 1 + 4;

/** Encodes a queue message for storage or transport. */
export function encodeQueueMessage(m: QueueMessage): Uint8Array {
  checkU64(m.sequenceNumber, "sequenceNumber");
  checkU32(m.epoch, "epoch");
  if (!Number.isInteger(m.kind) || m.kind < 0 || m.kind > 0xff)
    throw new InvalidInputError("kind out of range");
  if (m.ciphertext.length > MAX_CIPHERTEXT) {
    throw new InvalidInputError(`ciphertext length ${m.ciphertext.length} outside [0, ${MAX_CIPHERTEXT}]`);
  }
  const out = new Uint8Array(MESSAGE_PREFIX + m.ciphertext.length);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  setU64(view, 1, m.sequenceNumber);
  view.setUint32(9, m.epoch);
  out[13] = m.kind;
  view.setUint32(14, m.ciphertext.length);
  out.set(m.ciphertext, MESSAGE_PREFIX);
  return out;
}

/** Decodes encodeQueueMessage's output. */
export function decodeQueueMessage(bytes: Uint8Array): QueueMessage {
  return decodeAll(bytes, "QueueMessage", (r) => {
    r.version([VERSION]);
    const sequenceNumber = r.u64("sequenceNumber");
    const epoch = r.u32("epoch");
    const kind = r.u8("kind");
    if (kind > 2) r.fail("kind", `unknown kind ${kind}`);
    return {
      sequenceNumber,
      epoch,
      kind: kind as QueueMessageKind,
      ciphertext: r.vec("ciphertext", 4, { max: MAX_CIPHERTEXT }),
    };
  });
}

interface RatchetState {
  secret: Uint8Array;
  sequenceNumber: number;
  epoch: number;
  context: Uint8Array;
}

function encodeState(s: RatchetState, extra: number): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(VERSION)
      .fixed(s.secret, SECRET_LENGTH, "secret")
      .u64(s.sequenceNumber)
      .u32(s.epoch)
      .vec(s.context, 1, "context", { max: MAX_CONTEXT })
      .u32(extra),
  );
}

function decodeState(bytes: Uint8Array, struct: string): RatchetState & { extra: number } {
  return decodeAll(bytes, struct, (r) => {
    r.version([VERSION]);
    return {
      secret: r.fixed("secret", SECRET_LENGTH),
      sequenceNumber: r.u64("sequenceNumber"),
      epoch: r.u32("epoch"),
      context: r.vec("context", 1, { max: MAX_CONTEXT }),
      extra: r.u32("extra"),
    };
  });
}

/** QS side of the queue ratchet: encrypts messages into one queue. */
export class QueueRatchetSender {
  private constructor(
    private state: RatchetState,
    /** Messages encrypted since the last key update (drives the update policy). */
    private sinceUpdate: number,
  ) {}

  /**
   * Starts a ratchet for a new queue: samples the initial secret and returns the Init message
   * (sequence number 0) that carries it, HPKE-encrypted to the queue encryption key.
   * `context` identifies the queue (e.g. the QS client id) and is bound into every message.
   */
  static create(
    queueKey: HpkePublicKey,
    context: Uint8Array,
  ): { sender: QueueRatchetSender; message: QueueMessage } {
    if (context.length > MAX_CONTEXT) throw new InvalidInputError("queue context too long");
    const secret = randomBytes(SECRET_LENGTH);
    const meta = { sequenceNumber: 0, epoch: 0, kind: QueueMessageKind.Init };
    const sealed = hpkeSeal(queueKey, HpkeLabel.QueueRatchetInit, secret, {
      infoContext: context,
      aad: header(meta, context),
    });
    const ciphertext = encodeWith((w) => w.fixed(sealed.enc, 32).vec(sealed.ciphertext, 1, "ciphertext"));
    return {
      sender: new QueueRatchetSender({ secret, sequenceNumber: 1, epoch: 0, context: context.slice() }, 0),
      message: { ...meta, ciphertext },
    };
  }

  /** Restores a sender from toBytes() output. */
  static fromBytes(bytes: Uint8Array): QueueRatchetSender {
    const { extra, ...state } = decodeState(bytes, "QueueRatchetSender");
    return new QueueRatchetSender(state, extra);
  }

  /** Serialises the state (contains the current secret: store it encrypted at rest). */
  toBytes(): Uint8Array {
    return encodeState(this.state, this.sinceUpdate);
  }

  /** The sequence number the next message gets. */
  get nextSequenceNumber(): number {
    return this.state.sequenceNumber;
  }

  /** Current epoch (number of key updates so far). */
  get epoch(): number {
    return this.state.epoch;
  }

  /** Messages since the last key update; the QS rotates when this reaches its configured interval. */
  get messagesSinceUpdate(): number {
    return this.sinceUpdate;
  }

  /** Encrypts `payload` as the next message and advances (deleting the used secret). */
  encrypt(payload: Uint8Array): QueueMessage {
    const { secret, sequenceNumber: n, epoch, context } = this.state;
    const meta = { sequenceNumber: n, epoch, kind: QueueMessageKind.Message };
    const key = messageKey(secret, n, context);
    const ciphertext = aeadSeal(key, AeadLabel.QueueMessage, payload, header(meta, context));
    this.state = { ...this.state, secret: nextSecret(secret, n, context), sequenceNumber: n + 1 };
    wipe(key);
    wipe(secret);
    this.sinceUpdate++;
    return { ...meta, ciphertext };
  }

  /** Injects fresh randomness (key update) and returns the Update message carrying it. */
  rotate(queueKey: HpkePublicKey): QueueMessage {
    const { secret, sequenceNumber: n, epoch, context } = this.state;
    const fresh = randomBytes(SECRET_LENGTH);
    const meta = { sequenceNumber: n, epoch: epoch + 1, kind: QueueMessageKind.Update };
    const sealed = hpkeSeal(queueKey, HpkeLabel.QueueRatchetUpdate, fresh, {
      infoContext: context,
      aad: header(meta, context),
    });
    const ciphertext = encodeWith((w) => w.fixed(sealed.enc, 32).vec(sealed.ciphertext, 1, "ciphertext"));
    this.state = {
      ...this.state,
      secret: rotatedSecret(secret, n, context, fresh),
      sequenceNumber: n + 1,
      epoch: epoch + 1,
    };
    wipe(secret);
    wipe(fresh);
    this.sinceUpdate = 0;
    return { ...meta, ciphertext };
  }
}

/** The result of decrypting one queue message. */
export type DequeuedMessage =
  | { kind: "message"; sequenceNumber: number; payload: Uint8Array }
  | { kind: "update"; sequenceNumber: number };

function openSealedSecret(
  keyPair: HpkeKeyPair,
  label: string,
  m: QueueMessage,
  context: Uint8Array,
): Uint8Array {
  const { enc, ciphertext } = decodeAll(m.ciphertext, "QueueMessage.ciphertext", (r) => ({
    enc: r.fixed("enc", 32),
    ciphertext: r.vec("ciphertext", 1),
  }));
  const secret = hpkeOpen(
    keyPair,
    label,
    { enc, ciphertext },
    { infoContext: context, aad: header(m, context) },
  );
  if (secret.length !== SECRET_LENGTH) throw new DecryptionError("queue ratchet secret has the wrong length");
  return secret;
}

/** Client side of the queue ratchet: decrypts the messages of its own queue in order. */
export class QueueRatchetReceiver {
  private constructor(
    private state: RatchetState,
    private readonly maxGap: number,
  ) {}

  /** Starts from the queue's Init message, decrypted with the queue encryption key pair. */
  static fromInit(
    queueKeyPair: HpkeKeyPair,
    context: Uint8Array,
    init: QueueMessage,
    options: { maxGap?: number } = {},
  ): QueueRatchetReceiver {
    if (init.kind !== QueueMessageKind.Init || init.sequenceNumber !== 0 || init.epoch !== 0) {
      throw new DecryptionError("the first queue message must be the Init message at sequence number 0");
    }
    const secret = openSealedSecret(queueKeyPair, HpkeLabel.QueueRatchetInit, init, context);
    return new QueueRatchetReceiver(
      { secret, sequenceNumber: 1, epoch: 0, context: context.slice() },
      options.maxGap ?? DEFAULT_MAX_QUEUE_GAP,
    );
  }

  /** Restores a receiver from toBytes() output. */
  static fromBytes(bytes: Uint8Array, options: { maxGap?: number } = {}): QueueRatchetReceiver {
    const { extra: _unused, ...state } = decodeState(bytes, "QueueRatchetReceiver");
    return new QueueRatchetReceiver(state, options.maxGap ?? DEFAULT_MAX_QUEUE_GAP);
  }

  /** Serialises the state (contains the current secret: keep it in the client's encrypted store). */
  toBytes(): Uint8Array {
    return encodeState(this.state, 0);
  }

  /** The sequence number expected next (fetch the queue from here). */
  get nextSequenceNumber(): number {
    return this.state.sequenceNumber;
  }

  get epoch(): number {
    return this.state.epoch;
  }

  /**
   * Decrypts the next message (key update messages need the queue key pair). Enforces the gap
   * rule described above; on any error the state is unchanged.
   */
  decrypt(m: QueueMessage, queueKeyPair?: HpkeKeyPair): DequeuedMessage {
    const { context } = this.state;
    let { secret, sequenceNumber: expected } = this.state;
    if (m.sequenceNumber < expected) {
      throw new StaleSequenceError(
        `queue message ${m.sequenceNumber} is older than ${expected}; its key is deleted`,
      );
    }
    const gap = m.sequenceNumber - expected;
    if (gap > 0) {
      if (gap > this.maxGap)
        throw new SequenceGapError(`${gap} queue messages missing (at most ${this.maxGap} skipped)`);
      const expectedEpoch = m.kind === QueueMessageKind.Update ? this.state.epoch + 1 : this.state.epoch;
      if (m.epoch !== expectedEpoch) {
        throw new MissedKeyUpdateError(`a key update was lost before queue message ${m.sequenceNumber}`);
      }
    }
    const skipped: Uint8Array[] = [];
    for (let n = expected; n < m.sequenceNumber; n++) {
      skipped.push(secret);
      secret = nextSecret(secret, n, context);
    }
    const n = m.sequenceNumber;
    if (m.kind === QueueMessageKind.Message) {
      if (m.epoch !== this.state.epoch)
        throw new MissedKeyUpdateError(`queue message ${n} is from epoch ${m.epoch}`);
      const key = messageKey(secret, n, context);
      const payload = aeadOpen(key, AeadLabel.QueueMessage, m.ciphertext, header(m, context));
      wipe(key);
      this.commit(nextSecret(secret, n, context), n + 1, this.state.epoch, skipped, secret);
      return { kind: "message", sequenceNumber: n, payload };
    }
    if (m.kind === QueueMessageKind.Update) {
      if (m.epoch !== this.state.epoch + 1) throw new MissedKeyUpdateError(`key update ${n} skips an epoch`);
      if (!queueKeyPair) throw new InvalidInputError("a key update needs the queue encryption key pair");
      const fresh = openSealedSecret(queueKeyPair, HpkeLabel.QueueRatchetUpdate, m, context);
      this.commit(rotatedSecret(secret, n, context, fresh), n + 1, m.epoch, skipped, secret);
      wipe(fresh);
      return { kind: "update", sequenceNumber: n };
    }
    throw new DecryptionError(`unexpected Init message at sequence number ${n}`);
  }

  private commit(
    secret: Uint8Array,
    sequenceNumber: number,
    epoch: number,
    skipped: Uint8Array[],
    used: Uint8Array,
  ): void {
    // Forward secrecy: every secret up to and including the one just used is deleted.
    for (const s of skipped) wipe(s);
    wipe(used);
    this.state = { ...this.state, secret, sequenceNumber, epoch };
  }
}
