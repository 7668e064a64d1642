import { HpkePublicKey, hpkeKeyId, SigningKey, signatureKeyId, VerifyingKey } from "@phoenix/crypto";
import { describe, expect, it } from "vitest";
import { generateKeyRecord, KeyRing, keyIdOf, planRotation } from "./key-ring.js";

const DAY = 86_400_000;
const t0 = new Date("2026-01-01T00:00:00Z");

describe("planRotation", () => {
  it("creates a key on first start and nothing else", () => {
    const plan = planRotation("queue_config", [], {
      now: t0,
      rotationIntervalMs: 10 * DAY,
      retirementGraceMs: 30 * DAY,
    });
    expect(plan.create).toHaveLength(1);
    expect(plan.retire).toEqual([]);
    expect(plan.remove).toEqual([]);
  });

  it("keeps a young key and rotates an old one, retiring it for the grace period", () => {
    const current = generateKeyRecord("queue_config", t0);
    const young = planRotation("queue_config", [current], {
      now: new Date(t0.getTime() + 9 * DAY),
      rotationIntervalMs: 10 * DAY,
      retirementGraceMs: 30 * DAY,
    });
    expect(young.create).toEqual([]);
    const now = new Date(t0.getTime() + 10 * DAY);
    const old = planRotation("queue_config", [current], {
      now,
      rotationIntervalMs: 10 * DAY,
      retirementGraceMs: 30 * DAY,
    });
    expect(old.create).toHaveLength(1);
    expect(old.retire).toEqual([{ keyId: current.keyId, notAfter: new Date(now.getTime() + 30 * DAY) }]);
  });

  it("removes retired keys past their end and never rotates with interval 0", () => {
    const retired = { ...generateKeyRecord("signing", t0), notAfter: new Date(t0.getTime() + DAY) };
    const current = generateKeyRecord("signing", t0);
    const plan = planRotation("signing", [retired, current], {
      now: new Date(t0.getTime() + 1000 * DAY),
      rotationIntervalMs: 0,
      retirementGraceMs: DAY,
    });
    expect(plan.create).toEqual([]);
    expect(plan.remove).toEqual([retired.keyId]);
  });

  it("makes an operator-provided key current, and keeps it once it is", () => {
    const generated = generateKeyRecord("queue_config", t0);
    const provided = new Uint8Array(32).fill(7);
    const plan = planRotation("queue_config", [generated], {
      now: t0,
      rotationIntervalMs: DAY,
      retirementGraceMs: DAY,
      provided,
    });
    expect(plan.create).toHaveLength(1);
    expect(plan.create[0]?.privateKey).toEqual(provided);
    expect(plan.retire.map((r) => r.keyId)).toEqual([generated.keyId]);
    const stable = planRotation("queue_config", plan.create, {
      now: new Date(t0.getTime() + 5 * DAY),
      rotationIntervalMs: DAY,
      retirementGraceMs: DAY,
      provided,
    });
    expect(stable.create).toEqual([]);
  });
});

describe("KeyRing", () => {
  it("puts the current key first and lists retired keys only until they end", () => {
    const old = { ...generateKeyRecord("queue_config", t0), notAfter: new Date(t0.getTime() + 2 * DAY) };
    const current = generateKeyRecord("queue_config", new Date(t0.getTime() + DAY));
    const signing = generateKeyRecord("signing", t0);
    const ring = new KeyRing([old, current, signing]);
    expect(ring.currentConfigKey?.keyId).toEqual(current.keyId);
    expect(ring.usableConfigKeys(t0.getTime() + DAY).map((k) => k.keyId)).toEqual([current.keyId, old.keyId]);
    expect(ring.usableConfigKeys(t0.getTime() + 3 * DAY).map((k) => k.keyId)).toEqual([current.keyId]);
    expect(ring.currentSigningKey?.keyId).toEqual(signing.keyId);
  });

  it("uses libs/crypto's key ids, the ones sealed configs name and clients recompute", () => {
    const config = generateKeyRecord("queue_config", t0);
    const signing = generateKeyRecord("signing", t0);
    expect(config.keyId).toEqual(hpkeKeyId(HpkePublicKey.fromBytes(config.publicKey)));
    expect(signing.keyId).toEqual(signatureKeyId(VerifyingKey.fromBytes(signing.publicKey)));
    expect(keyIdOf("signing", SigningKey.generate().publicKey)).toHaveLength(16);
  });

  it("finds a usable queue-config key by id, whatever id its row was stored under", () => {
    const old = {
      ...generateKeyRecord("queue_config", t0),
      keyId: new Uint8Array(16).fill(9),
      notAfter: new Date(t0.getTime() + 2 * DAY),
    };
    const current = generateKeyRecord("queue_config", new Date(t0.getTime() + DAY));
    const ring = new KeyRing([old, current]);
    const oldId = hpkeKeyId(HpkePublicKey.fromBytes(old.publicKey));
    expect(ring.usableConfigKey(oldId, t0.getTime() + DAY)?.pair.publicKey.bytes).toEqual(old.publicKey);
    expect(ring.usableConfigKey(oldId, t0.getTime() + 3 * DAY)).toBeUndefined();
    expect(ring.usableConfigKey(current.keyId, t0.getTime() + 3 * DAY)?.pair.publicKey.bytes).toEqual(
      current.publicKey,
    );
    expect(ring.usableConfigKey(new Uint8Array(16), t0.getTime())).toBeUndefined();
  });
});
