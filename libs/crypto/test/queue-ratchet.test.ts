import { describe, expect, it } from "vitest";
import {
  AeadLabel,
  aeadOpen,
  DecodeError,
  DecryptionError,
  decodeQueueMessage,
  encodeQueueMessage,
  encodeWith,
  expandWithLabel,
  HpkeKeyPair,
  HpkeLabel,
  hkdfExtract,
  hpkeOpen,
  KdfLabel,
  MissedKeyUpdateError,
  type QueueMessage,
  QueueRatchetReceiver,
  QueueRatchetSender,
  SequenceGapError,
  StaleSequenceError,
  utf8,
} from "../src/index.js";

const queue = utf8("qs-client-7f3a");

function setup(maxGap?: number) {
  const queueKey = HpkeKeyPair.generate();
  const { sender, message } = QueueRatchetSender.create(queueKey.publicKey, queue);
  const receiver = QueueRatchetReceiver.fromInit(
    queueKey,
    queue,
    message,
    maxGap === undefined ? {} : { maxGap },
  );
  return { queueKey, sender, receiver };
}

function payloadOf(r: ReturnType<QueueRatchetReceiver["decrypt"]>): string {
  if (r.kind !== "message") throw new Error("expected a message");
  return new TextDecoder().decode(r.payload);
}

describe("queue ratchet", () => {
  it("delivers messages in order, across key updates and through persistence", () => {
    const { queueKey, sender, receiver } = setup();
    expect(payloadOf(receiver.decrypt(sender.encrypt(utf8("m1"))))).toBe("m1");
    const update = sender.rotate(queueKey.publicKey);
    expect(receiver.decrypt(update, queueKey)).toEqual({ kind: "update", sequenceNumber: 2 });
    const restoredSender = QueueRatchetSender.fromBytes(sender.toBytes());
    const restoredReceiver = QueueRatchetReceiver.fromBytes(receiver.toBytes());
    const wire = encodeQueueMessage(restoredSender.encrypt(utf8("m3")));
    const got = restoredReceiver.decrypt(decodeQueueMessage(wire));
    expect(got.sequenceNumber).toBe(3);
    expect(payloadOf(got)).toBe("m3");
    expect(restoredReceiver.epoch).toBe(1);
  });

  it("binds the sequence number: a message replayed under another number does not decrypt", () => {
    const { sender, receiver } = setup();
    const m1 = sender.encrypt(utf8("m1"));
    const relabelled: QueueMessage = { ...m1, sequenceNumber: 2 };
    expect(() => receiver.decrypt(relabelled)).toThrow(DecryptionError);
    // the failed attempt did not move the receiver
    expect(payloadOf(receiver.decrypt(m1))).toBe("m1");
  });

  it("forward secrecy: a consumed message cannot be decrypted again, even from a later state", () => {
    const { sender, receiver } = setup();
    const m1 = sender.encrypt(utf8("m1"));
    receiver.decrypt(m1);
    expect(() => receiver.decrypt(m1)).toThrow(StaleSequenceError);
    const stolen = QueueRatchetReceiver.fromBytes(receiver.toBytes());
    expect(() => stolen.decrypt(m1)).toThrow(StaleSequenceError);
  });

  it("post-compromise security: a stolen state cannot follow past a key update", () => {
    const { queueKey, sender, receiver } = setup();
    const stolen = QueueRatchetReceiver.fromBytes(receiver.toBytes());
    const update = sender.rotate(queueKey.publicKey);
    const secret = sender.encrypt(utf8("after update"));
    receiver.decrypt(update, queueKey);
    expect(payloadOf(receiver.decrypt(secret))).toBe("after update");
    // The attacker has the old ratchet state but not the queue key pair.
    expect(() => stolen.decrypt(update, HpkeKeyPair.generate())).toThrow(DecryptionError);
    expect(() => stolen.decrypt(secret)).toThrow(MissedKeyUpdateError);
    // Even forging the epoch does not help: the header is authenticated.
    expect(() => stolen.decrypt({ ...secret, epoch: 0 })).toThrow(DecryptionError);
  });

  it("skips lost messages within an epoch, up to the gap limit", () => {
    const { sender, receiver } = setup(3);
    sender.encrypt(utf8("lost1"));
    sender.encrypt(utf8("lost2"));
    expect(payloadOf(receiver.decrypt(sender.encrypt(utf8("m3"))))).toBe("m3");
    for (let i = 0; i < 4; i++) sender.encrypt(utf8("lost"));
    expect(() => receiver.decrypt(sender.encrypt(utf8("too far")))).toThrow(SequenceGapError);
  });

  it("refuses to skip over a lost key update", () => {
    const { queueKey, sender, receiver } = setup();
    sender.rotate(queueKey.publicKey);
    expect(() => receiver.decrypt(sender.encrypt(utf8("m")))).toThrow(MissedKeyUpdateError);
  });

  it("refuses a wrong queue context, a flipped bit and a truncated message", () => {
    const queueKey = HpkeKeyPair.generate();
    const { sender, message } = QueueRatchetSender.create(queueKey.publicKey, queue);
    expect(() => QueueRatchetReceiver.fromInit(queueKey, utf8("other-queue"), message)).toThrow(
      DecryptionError,
    );
    const receiver = QueueRatchetReceiver.fromInit(queueKey, queue, message);
    const m = sender.encrypt(utf8("m1"));
    const flipped = { ...m, ciphertext: m.ciphertext.slice() };
    flipped.ciphertext[50] = (flipped.ciphertext[50] as number) ^ 1;
    expect(() => receiver.decrypt(flipped)).toThrow(DecryptionError);
    const wire = encodeQueueMessage(m);
    expect(() => decodeQueueMessage(wire.subarray(0, wire.length - 1))).toThrow(DecodeError);
    expect(payloadOf(receiver.decrypt(m))).toBe("m1");
  });

  it("tracks the update policy counter", () => {
    const { queueKey, sender } = setup();
    sender.encrypt(utf8("a"));
    sender.encrypt(utf8("b"));
    expect(sender.messagesSinceUpdate).toBe(2);
    sender.rotate(queueKey.publicKey);
    expect(sender.messagesSinceUpdate).toBe(0);
    expect(sender.epoch).toBe(1);
  });

  // The sender builds its derivations by hand for speed; these pin them to the specification
  // written with the generic helpers (ExpandWithLabel, the codec), byte for byte.
  it("derives the message key, the next secret and the rotated secret as specified", () => {
    const queueKey = HpkeKeyPair.generate();
    const { sender } = QueueRatchetSender.create(queueKey.publicKey, queue);
    const secretOf = (s: QueueRatchetSender) => s.toBytes().slice(1, 33);
    const position = (n: number) => encodeWith((w) => w.u64(n).vec(queue, 1));
    const header = (m: QueueMessage) =>
      encodeWith((w) => w.u8(1).u64(m.sequenceNumber).u32(m.epoch).u8(m.kind).vec(queue, 1));
    for (let i = 0; i < 3; i++) {
      const secret = secretOf(sender);
      const m = sender.encrypt(utf8(`m${i}`));
      const key = expandWithLabel(secret, KdfLabel.QueueRatchetMessageKey, position(m.sequenceNumber), 32);
      expect(new TextDecoder().decode(aeadOpen(key, AeadLabel.QueueMessage, m.ciphertext, header(m)))).toBe(
        `m${i}`,
      );
      expect(secretOf(sender)).toEqual(
        expandWithLabel(secret, KdfLabel.QueueRatchetNext, position(m.sequenceNumber), 32),
      );
    }
    const secret = secretOf(sender);
    const update = sender.rotate(queueKey.publicKey);
    const fresh = hpkeOpen(
      queueKey,
      HpkeLabel.QueueRatchetUpdate,
      { enc: update.ciphertext.slice(0, 32), ciphertext: update.ciphertext.slice(33) },
      { infoContext: queue, aad: header(update) },
    );
    const rotation = expandWithLabel(
      secret,
      KdfLabel.QueueRatchetRotation,
      position(update.sequenceNumber),
      32,
    );
    expect(secretOf(sender)).toEqual(hkdfExtract(rotation, fresh));
    const wire = encodeQueueMessage(update);
    expect(wire).toEqual(
      encodeWith((w) =>
        w.u8(1).u64(update.sequenceNumber).u32(update.epoch).u8(update.kind).vec(update.ciphertext, 4),
      ),
    );
    expect(decodeQueueMessage(wire)).toEqual(update);
  });
});
