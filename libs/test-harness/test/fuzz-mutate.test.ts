// The fuzzer's wire-level mutator: it must re-encode what it parses byte for byte (otherwise
// "mutations" of valid requests would differ everywhere), reach into nested signed bytes, and
// draw the same inputs for the same seed (a finding is replayed by its seed).
import { type common, delivery } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { encodeWire, MUTATIONS, mutate, parseWire } from "../src/fuzz/mutate.js";
import { Prng } from "../src/random-prng.js";

const tbs = delivery.SendMessageTbs.encode({
  header: {
    label: "phoenix.delivery.v1.DeliveryService/SendMessage",
    timestamp: new Date(0),
    requestId: new Uint8Array(16).fill(1),
    sender: { $case: "leafIndex", value: 3 },
  },
  groupId: { uuid: new Uint8Array(16).fill(2), domain: "alpha.example" },
  message: new Uint8Array([1, 2, 3]),
} as delivery.SendMessageTbs).finish();
const valid = delivery.SendMessageRequest.encode({
  signed: { tbs, signature: new Uint8Array(64).fill(9) } as common.Signed,
  groupStateEarKey: new Uint8Array(32).fill(4),
} as delivery.SendMessageRequest).finish();

describe("fuzz mutator", () => {
  it("re-encodes a parsed request byte for byte", () => {
    const fields = parseWire(valid);
    // Two length-delimited fields: signed (1) and groupStateEarKey (2).
    expect(fields?.map((f) => [f.field, f.wireType])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect(Buffer.from(encodeWire(fields ?? []))).toEqual(Buffer.from(valid));
  });

  it("refuses bytes that are not a message", () => {
    expect(parseWire(new Uint8Array([0x0a, 0x05, 1]))).toBeUndefined();
    expect(parseWire(new Uint8Array([0x07]))).toBeUndefined();
  });

  it("draws the same inputs for the same seed, and every kind over a few hundred draws", () => {
    const draw = (seed: number) => {
      const rng = new Prng(seed);
      return Array.from({ length: 200 }, () => mutate(rng, valid, 64 * 1024));
    };
    const a = draw(7);
    const b = draw(7);
    expect(a.map((m) => Buffer.from(m.bytes).toString("hex"))).toEqual(
      b.map((m) => Buffer.from(m.bytes).toString("hex")),
    );
    expect(new Set(a.map((m) => m.kind))).toEqual(new Set(MUTATIONS));
  });

  it("a signature flip changes exactly one bit of the 64-byte signature and nothing else", () => {
    const rng = new Prng(1);
    let found = 0;
    for (let i = 0; i < 400 && found < 5; i++) {
      const m = mutate(rng, valid, 1 << 20);
      if (m.kind !== "signature-flip") continue;
      found++;
      const request = delivery.SendMessageRequest.decode(m.bytes);
      expect(Buffer.from(request.signed?.tbs ?? [])).toEqual(Buffer.from(tbs));
      const diff = [...(request.signed?.signature ?? [])].map((byte) => byte ^ 9).filter((x) => x !== 0);
      expect(diff).toHaveLength(1);
      expect(Number.isInteger(Math.log2(diff[0] ?? 0))).toBe(true);
    }
    expect(found).toBeGreaterThan(0);
  });
});
