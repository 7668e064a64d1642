import { AsCredential, expirationFrom, KeyEncryptionError, SigningKey } from "@phoenix/crypto";
import type { common } from "@phoenix/proto";
import { RpcError } from "@phoenix/runtime/errors";
import { checkRequestHeader } from "@phoenix/runtime/signed-request";
import { describe, expect, it } from "vitest";
import {
  AsKeyConfigError,
  isFreshSigner,
  issueIntermediate,
  issueRoot,
  parseConfiguredRoot,
} from "./as-keys.js";
import { dayCeil, hourCeil, hourFloor, monthOf } from "./coarse-time.js";
import { dequeueLimit } from "./connection-queue.js";
import { validateHandle } from "./handles.js";
import { InviteCodeConfigError, matchInviteCode, parseInviteCodes } from "./invite-codes.js";
import { KeyEncryption, openStoredKey } from "./key-encryption.js";
import { checkSenderKind } from "./request-header.js";

const DAY = 24 * 3_600_000;
const policy = {
  rootLifetimeMs: 3650 * DAY,
  intermediateLifetimeMs: 365 * DAY,
  rotateAfterMs: 90 * DAY,
  clientMaxLifetimeMs: 180 * DAY,
};

function codeOf(run: () => unknown): number | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof RpcError) return error.code;
    throw error;
  }
  return undefined;
}

describe("handles", () => {
  it("accepts 3–63 of a-z0-9_- starting with a letter and refuses the rest", () => {
    for (const ok of ["abc", "a_b-c9", `a${"b".repeat(62)}`])
      expect(codeOf(() => validateHandle(ok))).toBeUndefined();
    for (const bad of ["ab", "9abc", "_abc", "ABC", "a.b", `a${"b".repeat(63)}`, "añb"]) {
      expect(codeOf(() => validateHandle(bad))).toBe(3);
    }
  });
});

describe("request header", () => {
  const now = new Date("2030-05-17T12:00:00Z");
  const window = { maxAgeMs: 300_000, maxFutureSkewMs: 60_000 };
  const header = (over: Partial<common.RequestHeader> = {}): common.RequestHeader => ({
    label: "phoenix.auth.v1.AuthService/DeleteUser",
    timestamp: now,
    requestId: new Uint8Array(16),
    sender: { $case: "handleHash", value: new Uint8Array(32) },
    ...over,
  });
  const check = (h: common.RequestHeader | undefined) =>
    codeOf(() => {
      const label = "phoenix.auth.v1.AuthService/DeleteUser";
      const checked = checkRequestHeader(h, { label, now: now.getTime(), window });
      checkSenderKind(checked.header, "handleHash");
    });

  it("accepts a fresh header and refuses wrong label, stale or future time, wrong sender", () => {
    expect(check(header())).toBeUndefined();
    expect(check(header({ label: "phoenix.auth.v1.AuthService/ListClients" }))).toBe(16);
    expect(check(header({ timestamp: new Date(now.getTime() - 301_000) }))).toBe(16);
    expect(check(header({ timestamp: new Date(now.getTime() + 61_000) }))).toBe(16);
    expect(check(header({ sender: undefined }))).toBe(16);
    expect(check(header({ requestId: new Uint8Array(3) }))).toBe(3);
    expect(check(undefined)).toBe(3);
  });

  it("keeps activity at month precision", () => {
    expect(monthOf(now.getTime()).toISOString()).toBe("2030-05-01T00:00:00.000Z");
  });

  it("rounds expiry times so nothing is served past its validity (down) and handles last at least their lifetime (up)", () => {
    const t = Date.parse("2030-05-17T13:45:10.123Z");
    expect(hourFloor(t).toISOString()).toBe("2030-05-17T13:00:00.000Z");
    expect(hourCeil(t).toISOString()).toBe("2030-05-17T14:00:00.000Z");
    expect(hourCeil(Date.parse("2030-05-17T14:00:00.000Z")).toISOString()).toBe("2030-05-17T14:00:00.000Z");
    expect(dayCeil(t).toISOString()).toBe("2030-05-18T00:00:00.000Z");
  });
});

describe("AS keys", () => {
  it("issues an intermediate inside the root's validity and rotates by age and remaining life", () => {
    const now = Date.now();
    const root = issueRoot("alpha.example", now, policy);
    const intermediate = issueIntermediate(root, now, policy);
    expect(intermediate.credential.signerFingerprint).toEqual(root.credential.fingerprint);
    intermediate.credential.verifySignatures(root.credential.verifyingKey);
    const fresh = { createdAt: now, notAfter: intermediate.credential.expiration.notAfter };
    expect(isFreshSigner(fresh, now + DAY, policy.rotateAfterMs, policy.clientMaxLifetimeMs)).toBe(true);
    expect(isFreshSigner(fresh, now + 91 * DAY, policy.rotateAfterMs, policy.clientMaxLifetimeMs)).toBe(
      false,
    );
    expect(
      isFreshSigner(
        { createdAt: now, notAfter: now + 10 * DAY },
        now,
        policy.rotateAfterMs,
        policy.clientMaxLifetimeMs,
      ),
    ).toBe(false);
  });

  it("loads a configured root and refuses mismatched or foreign ones", () => {
    const now = Date.now();
    const key = SigningKey.generate();
    const credential = AsCredential.issue(key, "alpha.example", expirationFrom(now - 1000, 3650 * DAY));
    const seed = Buffer.from(key.exportSeed()).toString("base64");
    const cred = Buffer.from(credential.bytes).toString("base64");
    expect(parseConfiguredRoot(seed, cred, "alpha.example", now).credential.id).toBe(credential.id);
    expect(() => parseConfiguredRoot(seed, cred, "beta.example", now)).toThrow(AsKeyConfigError);
    const other = Buffer.from(SigningKey.generate().exportSeed()).toString("hex");
    expect(() => parseConfiguredRoot(other, cred, "alpha.example", now)).toThrow(AsKeyConfigError);
    expect(() => parseConfiguredRoot(seed, "bm90IGEgY3JlZGVudGlhbA==", "alpha.example", now)).toThrow(
      AsKeyConfigError,
    );
  });
});

describe("limits", () => {
  it("caps dequeues at the server maximum", () => {
    expect(dequeueLimit(0, 500)).toBe(500);
    expect(dequeueLimit(10, 500)).toBe(10);
    expect(dequeueLimit(10_000, 500)).toBe(500);
  });
});

describe("invite codes", () => {
  it("reads use counts, defaults to the configured count and refuses unusable entries", () => {
    const codes = parseInviteCodes(["spring", "friends:25", "a:b:3"], 1);
    expect(codes.map((c) => c.maxUses)).toEqual([1, 25, 3]);
    expect(matchInviteCode(codes, "friends")?.maxUses).toBe(25);
    expect(matchInviteCode(codes, "a:b")?.maxUses).toBe(3);
    expect(matchInviteCode(codes, "friends:25")).toBeUndefined();
    expect(() => parseInviteCodes([":5"], 1)).toThrow(InviteCodeConfigError);
    expect(() => parseInviteCodes(["x:0"], 1)).toThrow(InviteCodeConfigError);
    expect(() => parseInviteCodes(["x".repeat(129)], 1)).toThrow(InviteCodeConfigError);
  });
});

describe("signing key encryption", () => {
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
  const seed = new Uint8Array(32).fill(7);
  const fingerprintA = new Uint8Array(32).fill(1);
  const fingerprintB = new Uint8Array(32).fill(2);
  const k1 = "11".repeat(32);
  const k2 = "22".repeat(32);

  it("seals a seed so that only its own row and the configured key open it", () => {
    const encryption = new KeyEncryption(k1);
    const stored = encryption.seal(seed, fingerprintA);
    expect(hex(stored.signingKey)).not.toContain(hex(seed));
    expect(openStoredKey(stored, fingerprintA, encryption)).toEqual(seed);
    expect(() => openStoredKey(stored, fingerprintB, encryption)).toThrow(KeyEncryptionError);
    expect(() => openStoredKey(stored, fingerprintA, new KeyEncryption(k2))).toThrow(
      /neither AS_KEY_ENCRYPTION_KEY nor AS_KEY_ENCRYPTION_KEY_PREVIOUS/,
    );
    expect(openStoredKey(stored, fingerprintA, new KeyEncryption(k2, k1))).toEqual(seed);
    // A plaintext seed from before encryption opens as it is (to be resealed at start).
    expect(openStoredKey({ signingKey: seed, signingKeyKekId: null }, fingerprintA, encryption)).toEqual(
      seed,
    );
    expect(() => new KeyEncryption("abcd")).toThrow(KeyEncryptionError);
  });
});
