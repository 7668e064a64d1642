import { HpkeKeyPair, sealPushToken } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { InvalidArgumentError } from "@phoenix/runtime/errors";
import { describe, expect, it } from "vitest";
import { generateKeyRecord, KeyRing } from "./key-ring.js";
import { openSealedPushToken } from "./push-token.js";

const DAY = 86_400_000;
const t0 = new Date("2026-01-01T00:00:00Z");
const token: queue.PushToken = {
  provider: queue.PushProvider.PUSH_PROVIDER_WEBHOOK,
  token: "https://push.example/device",
};

function ring(): KeyRing {
  const retired = { ...generateKeyRecord("queue_config", t0), notAfter: new Date(t0.getTime() + DAY) };
  return new KeyRing([retired, generateKeyRecord("queue_config", new Date(t0.getTime() + 1))]);
}

describe("openSealedPushToken", () => {
  it("opens a token sealed with libs/crypto to the current or a retired key in its grace", () => {
    const keys = ring().usableConfigKeys(t0.getTime());
    for (const key of keys) {
      const sealed = sealPushToken(key.pair.publicKey, queue.PushToken.encode(token).finish());
      expect(openSealedPushToken(keys, sealed, "f")).toEqual(token);
    }
  });

  it("refuses a token sealed to a key the QS does not hold, or garbage, naming the field", () => {
    const keys = ring().usableConfigKeys(t0.getTime());
    const foreign = sealPushToken(HpkeKeyPair.generate().publicKey, queue.PushToken.encode(token).finish());
    expect(() => openSealedPushToken(keys, foreign, "tbs.sealed_push_token")).toThrow(
      /tbs\.sealed_push_token.*not sealed to a usable QS queue-config key/,
    );
    expect(() => openSealedPushToken(keys, new Uint8Array(40), "tbs.sealed_push_token")).toThrow(
      InvalidArgumentError,
    );
  });
});
