import { describe, expect, it } from "vitest";
import {
  type DsGroupState,
  decodeGroupState,
  encodeGroupState,
  GroupStateCodecError,
} from "./group-state.js";

function bytes(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

/** A state with every list non-empty and values that need all bits of their fields. */
function sampleState(): DsGroupState {
  return {
    publicGroup: bytes(40, 1),
    groupInfo: bytes(30, 2),
    members: [
      {
        leafIndex: 0,
        encryptedClientInfo: bytes(12, 3),
        queue: { domain: "alpha.example", sealedQueueConfig: bytes(48, 4) },
        activityTime: 1_760_000_000_123,
        activityEpoch: 0n,
      },
      {
        leafIndex: 7,
        encryptedClientInfo: bytes(0, 0),
        queue: { domain: "beta.example", sealedQueueConfig: bytes(48, 5) },
        activityTime: 2 ** 52,
        activityEpoch: 2n ** 63n + 5n,
      },
    ],
    profileKeys: [{ pseudonym: bytes(16, 6), encryptedProfileKey: bytes(40, 7) }],
    proposalMessages: [bytes(20, 8), bytes(1, 9)],
    requiredRemovals: [
      { leafIndex: 7, reason: "queue_deleted" },
      { leafIndex: 3, reason: "inactive" },
    ],
    welcomeEpochs: [
      {
        epoch: 4n,
        joiners: [{ keyPackageRef: bytes(32, 10), signatureKey: bytes(32, 11), notAfter: 1_900_000_000_000 }],
        members: [{ leafIndex: 0, encryptedClientInfo: bytes(12, 3), encryptedProfileKey: bytes(40, 7) }],
      },
    ],
    queueReportPrivateKey: bytes(32, 12),
  };
}

describe("group state codec", () => {
  it("round-trips every field and encodes deterministically", () => {
    const state = sampleState();
    const encoded = encodeGroupState(state);
    const decoded = decodeGroupState(encoded);
    expect(decoded).toEqual(state);
    expect(encodeGroupState(decoded)).toEqual(encoded);
  });

  it("round-trips an empty group", () => {
    const state: DsGroupState = {
      ...sampleState(),
      members: [],
      profileKeys: [],
      proposalMessages: [],
      requiredRemovals: [],
      welcomeEpochs: [],
    };
    expect(decodeGroupState(encodeGroupState(state))).toEqual(state);
  });

  it("refuses every truncation of a valid encoding", () => {
    const encoded = encodeGroupState(sampleState());
    for (let length = 0; length < encoded.length; length++)
      expect(() => decodeGroupState(encoded.subarray(0, length)), `length ${length}`).toThrow(
        GroupStateCodecError,
      );
  });

  it("refuses trailing bytes, an unknown version and an unknown removal reason", () => {
    const encoded = encodeGroupState(sampleState());
    const trailing = new Uint8Array(encoded.length + 1);
    trailing.set(encoded);
    expect(() => decodeGroupState(trailing)).toThrow(GroupStateCodecError);

    const future = encoded.slice();
    future[0] = 2;
    expect(() => decodeGroupState(future)).toThrow(/version/);
    expect(() => decodeGroupState(future)).toThrow(GroupStateCodecError);

    const state = sampleState();
    const encodedOneRemoval = encodeGroupState({
      ...state,
      requiredRemovals: [{ leafIndex: 1, reason: "inactive" }],
      welcomeEpochs: [],
    });
    // The reason byte sits before the welcome-epoch count (u32 0) and the report key (u8 length + 32).
    const reasonAt = encodedOneRemoval.length - 1 - 32 - 4 - 1;
    expect(encodedOneRemoval[reasonAt]).toBe(0);
    const unknown = encodedOneRemoval.slice();
    unknown[reasonAt] = 9;
    expect(() => decodeGroupState(unknown)).toThrow(/removal reason/);
  });
});
