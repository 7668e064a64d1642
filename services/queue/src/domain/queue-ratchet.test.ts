import { HpkeKeyPair, randomBytes } from "@phoenix/crypto";
import { describe, expect, it } from "vitest";
import { keyUpdateDue, newQueue, openRatchet } from "./queue-ratchet.js";
import { StorageKeys } from "./storage-keys.js";

describe("ratchet update policy", () => {
  const storage = new StorageKeys(randomBytes(32));
  const clientId = randomBytes(16);
  const queue = newQueue(storage, clientId, HpkeKeyPair.generate().publicKey.bytes);
  const sender = openRatchet(storage, clientId, queue.encryptedRatchet);
  const policy = { everyMessages: 3, everyMs: 60_000 };

  it("is due after N messages, after T time, or when forced", () => {
    expect(keyUpdateDue(policy, sender, 0, 1000, false)).toBe(false);
    expect(keyUpdateDue(policy, sender, 0, 60_000, false)).toBe(true);
    expect(keyUpdateDue(policy, sender, 0, 1000, true)).toBe(true);
    for (let i = 0; i < 3; i++) sender.encrypt(randomBytes(4));
    expect(keyUpdateDue(policy, sender, 0, 1000, false)).toBe(true);
  });

  it("keeps the ratchet state encrypted and bound to its queue", () => {
    expect(() => openRatchet(storage, randomBytes(16), queue.encryptedRatchet)).toThrow();
    expect(queue.nextSeq).toBe(1n);
  });
});
