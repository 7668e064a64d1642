import { decodeAll, encodeWith, type Reader, type Writer } from "@phoenix/crypto";

/**
 * The DS's plaintext view of one group. It is only ever stored encrypted (encryptAtRest under the
 * group-state EAR key) and only exists in memory while a request holding that key is processed.
 */
export interface DsGroupState {
  /** PublicGroup.encode(): GroupContext, public ratchet tree, proposal store, retained trees. */
  publicGroup: Uint8Array;
  /** The current epoch's GroupInfo (MLSMessage) as the last committer uploaded it. */
  groupInfo: Uint8Array;
  /** One entry per occupied leaf, ordered by leaf index. */
  members: MemberRecord[];
  /** Encrypted user profile keys, per user pseudonym (leaf credential identity). */
  profileKeys: ProfileKeyRecord[];
  /** The MLSMessage bytes of each stored proposal, in the PublicGroup's store order. */
  proposalMessages: Uint8Array[];
  /** DS-induced removals announced to the members that the next commit must carry out. */
  requiredRemovals: RequiredRemovalRecord[];
  /** Trees kept for clients added by Welcome, per epoch, until they caught up or expired. */
  welcomeEpochs: WelcomeEpochRecord[];
  /** X25519 private key for the sealed queue-deleted reports (public key in the row). */
  queueReportPrivateKey: Uint8Array;
}

/** Where the QS delivers a member's messages; opaque to the DS. */
export interface QueueRef {
  domain: string;
  sealedQueueConfig: Uint8Array;
}

export interface MemberRecord {
  leafIndex: number;
  /** libs/crypto EncryptedClientInfo, readable by members only. */
  encryptedClientInfo: Uint8Array;
  queue: QueueRef;
  /** Time (ms) the client was added or last committed. */
  activityTime: number;
  /** Epoch of that event. */
  activityEpoch: bigint;
}

export interface ProfileKeyRecord {
  pseudonym: Uint8Array;
  encryptedProfileKey: Uint8Array;
}

export type RemovalReasonName = "inactive" | "queue_deleted";

export interface RequiredRemovalRecord {
  leafIndex: number;
  reason: RemovalReasonName;
}

/** A client added by Welcome that has not committed yet. */
export interface JoinerRecord {
  keyPackageRef: Uint8Array;
  /** The KeyPackage leaf's signature key (verifies the joiner's WelcomeInfo request). */
  signatureKey: Uint8Array;
  /** KeyPackage lifetime end (ms); the entry is dropped after it. */
  notAfter: number;
}

export interface WelcomeEpochRecord {
  epoch: bigint;
  joiners: JoinerRecord[];
  /** Members as of that epoch (for WelcomeInfo). */
  members: { leafIndex: number; encryptedClientInfo: Uint8Array; encryptedProfileKey: Uint8Array }[];
}

/** Stored state is not what this code wrote (a bug or a foreign row): never a client's fault. */
export class GroupStateCodecError extends Error {
  override readonly name = "GroupStateCodecError";
}

const STATE_VERSION = 1;
const REASONS: readonly RemovalReasonName[] = ["inactive", "queue_deleted"];

function writeList<T>(w: Writer, items: readonly T[], write: (item: T) => void): void {
  w.u32(items.length);
  for (const item of items) write(item);
}

function readList<T>(r: Reader, field: string, read: () => T): T[] {
  const n = r.u32(field);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(read());
  return out;
}

function writeU64(w: Writer, value: bigint): void {
  w.u32(Number(value >> 32n)).u32(Number(value & 0xffffffffn));
}

function readU64(r: Reader, field: string): bigint {
  const hi = BigInt(r.u32(field));
  return (hi << 32n) | BigInt(r.u32(field));
}

/** Deterministic, versioned binary encoding of the group state (then padded and encrypted). */
export function encodeGroupState(state: DsGroupState): Uint8Array {
  return encodeWith((w) => {
    w.u8(STATE_VERSION);
    w.vec(state.publicGroup, 4, "publicGroup");
    w.vec(state.groupInfo, 4, "groupInfo");
    writeList(w, state.members, (m) => {
      w.u32(m.leafIndex);
      w.vec(m.encryptedClientInfo, 4, "encryptedClientInfo");
      w.str(m.queue.domain, 2, "queue.domain");
      w.vec(m.queue.sealedQueueConfig, 4, "queue.sealedQueueConfig");
      w.u64(m.activityTime);
      writeU64(w, m.activityEpoch);
    });
    writeList(w, state.profileKeys, (p) => {
      w.vec(p.pseudonym, 2, "pseudonym");
      w.vec(p.encryptedProfileKey, 4, "encryptedProfileKey");
    });
    writeList(w, state.proposalMessages, (p) => w.vec(p, 4, "proposal"));
    writeList(w, state.requiredRemovals, (r) => {
      w.u32(r.leafIndex);
      w.u8(REASONS.indexOf(r.reason));
    });
    writeList(w, state.welcomeEpochs, (e) => {
      writeU64(w, e.epoch);
      writeList(w, e.joiners, (j) => {
        w.vec(j.keyPackageRef, 1, "keyPackageRef");
        w.vec(j.signatureKey, 1, "signatureKey");
        w.u64(j.notAfter);
      });
      writeList(w, e.members, (m) => {
        w.u32(m.leafIndex);
        w.vec(m.encryptedClientInfo, 4, "encryptedClientInfo");
        w.vec(m.encryptedProfileKey, 4, "encryptedProfileKey");
      });
    });
    w.vec(state.queueReportPrivateKey, 1, "queueReportPrivateKey");
  });
}

/** Decodes encodeGroupState's output; throws GroupStateCodecError on anything else. */
export function decodeGroupState(bytes: Uint8Array): DsGroupState {
  try {
    return decodeAll(bytes, "DsGroupState", (r) => {
      r.version([STATE_VERSION]);
      const publicGroup = r.vec("publicGroup", 4);
      const groupInfo = r.vec("groupInfo", 4);
      const members = readList(r, "members", () => ({
        leafIndex: r.u32("leafIndex"),
        encryptedClientInfo: r.vec("encryptedClientInfo", 4),
        queue: {
          domain: r.str("queue.domain", 2),
          sealedQueueConfig: r.vec("queue.sealedQueueConfig", 4),
        },
        activityTime: r.u64("activityTime"),
        activityEpoch: readU64(r, "activityEpoch"),
      }));
      const profileKeys = readList(r, "profileKeys", () => ({
        pseudonym: r.vec("pseudonym", 2),
        encryptedProfileKey: r.vec("encryptedProfileKey", 4),
      }));
      const proposalMessages = readList(r, "proposalMessages", () => r.vec("proposal", 4));
      const requiredRemovals = readList(r, "requiredRemovals", () => {
        const leafIndex = r.u32("leafIndex");
        const reason = REASONS[r.u8("reason")];
        if (reason === undefined) return r.fail("reason", "unknown removal reason");
        return { leafIndex, reason };
      });
      const welcomeEpochs = readList(r, "welcomeEpochs", () => ({
        epoch: readU64(r, "epoch"),
        joiners: readList(r, "joiners", () => ({
          keyPackageRef: r.vec("keyPackageRef", 1),
          signatureKey: r.vec("signatureKey", 1),
          notAfter: r.u64("notAfter"),
        })),
        members: readList(r, "members", () => ({
          leafIndex: r.u32("leafIndex"),
          encryptedClientInfo: r.vec("encryptedClientInfo", 4),
          encryptedProfileKey: r.vec("encryptedProfileKey", 4),
        })),
      }));
      const queueReportPrivateKey = r.vec("queueReportPrivateKey", 1);
      return {
        publicGroup,
        groupInfo,
        members,
        profileKeys,
        proposalMessages,
        requiredRemovals,
        welcomeEpochs,
        queueReportPrivateKey,
      };
    });
  } catch (error) {
    throw new GroupStateCodecError(`stored group state does not decode: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
