import {
  AeadLabel,
  DecryptionError,
  decodeHpkeCiphertext,
  decryptAtRest,
  encryptAtRest,
  HpkeKeyPair,
  hpkeOpen,
  type PayloadSealer,
  ReplayError,
  type ReplayGuard,
  VerifyingKey,
} from "@phoenix/crypto";
import { common, type MessageDecoder } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { transaction } from "@phoenix/runtime/db";
import { InvalidArgumentError, NotFoundError } from "@phoenix/runtime/errors";
import { writeOutbox } from "@phoenix/runtime/outbox";
import type { ReplayStore } from "@phoenix/runtime/replay";
import { type OpenedSignedRequest, openSignedRequest } from "@phoenix/runtime/signed-request";
import type { DsContext } from "../domain/ds-context.js";
import { isRefusal, malformed, unauthenticated, wrongEarKey } from "../domain/errors.js";
import { encodeFanOuts, type FanOutPlan } from "../domain/fan-out.js";
import { DsGroup } from "../domain/group.js";
import { decodeGroupState, encodeGroupState, type QueueRef } from "../domain/group-state.js";
import { dayOf, decodeQueueReports, isLive, type QueueReportPolicy } from "../domain/queue-reports.js";
import {
  activityMonth,
  deleteGroupRow,
  type GroupRow,
  lockGroup,
  readGroup,
  updateGroup,
} from "../store/group-store.js";

const { ErrorReason } = common;

/** HPKE label of queue-deleted reports sealed to a group's report key. */
export const QUEUE_REPORT_LABEL = "DsQueueReport";
const EAR_KEY_LENGTH = 32;

/** Everything the RPC handlers share. */
export interface DsDeps {
  db: Database;
  ctx: DsContext;
  replayGuard: ReplayGuard;
  /** Request ids accepted by any replica (phoenix_runtime.seen_requests), claimed in the request's transaction. */
  seenRequests: ReplayStore;
  /** Accepted age / future skew of request timestamps. */
  replayWindow: { maxAgeMs: number; maxFutureSkewMs: number };
  /** Padding buckets of the encrypted group state. */
  paddingBuckets: readonly number[];
  /** How long a RequestGroupId reservation lives. */
  reservationTtlMs: number;
  /** Bus subject of fan-outs (default phoenix.fanout; tests use their own). */
  fanOutSubject: string;
  /** Called after a transaction that wrote fan-outs committed. */
  onFanOut: () => void;
  /** Seals fan-outs in the outbox (key derived from DS_REPLAY_MARKER_KEY); the relay opens them. */
  outboxSealer: PayloadSealer;
  /** How many queue-deleted reports a group keeps, and for how long (domain/queue-reports.ts). */
  queueReports: QueueReportPolicy;
}

/** A verified-later signed request: its decoded tbs and header. */
export type OpenedRequest<T> = OpenedSignedRequest<T>;

/**
 * Decodes the `…Tbs` of a signed request (the signature is checked once the group's key is
 * known) and checks its header (label, request id, timestamp window) with the runtime's check.
 */
export function openSigned<T extends { header: common.RequestHeader | undefined }>(
  deps: DsDeps,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
): OpenedRequest<T> {
  return openSignedRequest(signed, type, { label, now: deps.ctx.now(), window: deps.replayWindow });
}

/** Checks a qualified group id of this homeserver; returns its 16 uuid bytes. */
export function localGroupId(
  deps: DsDeps,
  groupId: common.QualifiedGroupId | undefined,
  field: string,
): Uint8Array {
  if (groupId === undefined) throw malformed(field, "missing");
  if (groupId.uuid.length !== 16) throw malformed(`${field}.uuid`, "must be 16 bytes");
  if (groupId.domain !== deps.ctx.domain)
    throw new InvalidArgumentError(`${field}: group of domain "${groupId.domain}" is not served here`, {
      details: [],
    });
  return groupId.uuid;
}

/** Checks the EAR key's shape. */
export function checkEarKey(key: Uint8Array, field = "group_state_ear_key"): Uint8Array {
  if (key.length !== EAR_KEY_LENGTH) throw malformed(field, `must be ${EAR_KEY_LENGTH} bytes`);
  return key;
}

/** Verifies the request signature with `key` and records its request id (replay guard). */
export function verifyRequest(
  deps: DsDeps,
  opened: OpenedRequest<unknown>,
  key: Uint8Array | undefined,
  who: string,
): void {
  if (key === undefined)
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} is not in the group`);
  let verifying: VerifyingKey;
  try {
    verifying = VerifyingKey.fromBytes(key);
  } catch {
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} has no Ed25519 signature key`);
  }
  if (!verifying.verify(opened.header.label, opened.signed.tbs, opened.signed.signature))
    throw unauthenticated(ErrorReason.ERROR_REASON_BAD_SIGNATURE, `signature of ${who} does not verify`);
  const ts = opened.header.timestamp?.getTime() ?? 0;
  try {
    // The guard is process-local; a transaction re-run must not count as a replay.
    if (!replayChecked.has(opened.signed))
      deps.replayGuard.check(opened.header.requestId, ts, deps.ctx.now());
    replayChecked.add(opened.signed);
  } catch (error) {
    if (error instanceof ReplayError)
      throw unauthenticated(ErrorReason.ERROR_REASON_REPLAYED_REQUEST, "request id already used");
    throw error;
  }
}

const replayChecked = new WeakSet<object>();

/**
 * Records the request id of a verified request in the database, inside the transaction that
 * carries out the request: a replay is refused by every replica and after restarts, as long as
 * the timestamp is inside the window (the row expires with it). Only state-changing requests and
 * SendMessage claim ids; a replayed read returns what the captured request already returned.
 */
export async function claimRequest(
  deps: DsDeps,
  tx: Database,
  opened: OpenedRequest<unknown>,
): Promise<void> {
  const ts = opened.header.timestamp?.getTime() ?? 0;
  if (
    !(await deps.seenRequests.claim(tx, [opened.header.requestId], new Date(ts + deps.replayWindow.maxAgeMs)))
  )
    throw unauthenticated(ErrorReason.ERROR_REASON_REPLAYED_REQUEST, "request id already used");
}

/** The header's leaf index (DS leaf auth). */
export function senderLeaf(header: common.RequestHeader): number {
  if (header.sender?.$case !== "leafIndex")
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, "header sender must be a leaf_index");
  return header.sender.value;
}

/** Verifies the request as signed by the leaf named in its header. */
export function authenticateLeaf(deps: DsDeps, group: DsGroup, opened: OpenedRequest<unknown>): number {
  const leaf = senderLeaf(opened.header);
  verifyRequest(deps, opened, group.signatureKeyOf(leaf), `leaf ${leaf}`);
  return leaf;
}

/** Decrypts a group row's state with the request's EAR key. */
export function decryptState(row: GroupRow, earKey: Uint8Array): Uint8Array {
  try {
    return decryptAtRest(earKey, AeadLabel.GroupState, row.state, { aad: row.groupId });
  } catch (error) {
    if (error instanceof DecryptionError) throw wrongEarKey();
    throw error;
  }
}

/** Encrypts a group's state for the row. */
export function encryptState(
  deps: DsDeps,
  groupId: Uint8Array,
  group: DsGroup,
  earKey: Uint8Array,
): Uint8Array {
  return encryptAtRest(earKey, AeadLabel.GroupState, encodeGroupState(group.toState()), {
    aad: groupId,
    buckets: deps.paddingBuckets,
  });
}

/** The live queue-deleted reports of a row, opened (lapsed ones are dropped unopened). */
function openReports(deps: DsDeps, row: GroupRow, group: DsGroup): QueueRef[] {
  const today = dayOf(deps.ctx.now());
  const records = decodeQueueReports(row.queueReports).filter((r) => isLive(r, today));
  if (records.length === 0) return [];
  const key = HpkeKeyPair.fromPrivateBytes(group.queueReportPrivateKey);
  const out: QueueRef[] = [];
  for (const record of records) {
    try {
      const ref = common.QsReference.decode(
        hpkeOpen(key, QUEUE_REPORT_LABEL, decodeHpkeCiphertext(record.sealed), { aad: row.groupId }),
      );
      out.push({ domain: ref.domain, sealedQueueConfig: ref.sealedQueueConfig });
    } catch {
      // A report that does not open was not sealed to this group; ignore it.
    }
  }
  return out;
}

/** What a write handler returns. */
export interface WriteOutcome<R> {
  result: R;
  fanOuts: FanOutPlan[];
  /** The request was a commit: refresh the group's last-activity month. */
  active: boolean;
  /** DeleteGroup: remove the row after fanning out. */
  deleteGroup?: boolean;
  /**
   * A commit that removed someone rotated the group's EAR key: the state is written under this
   * key, and the request's key no longer opens it.
   */
  earKeyAfter?: Uint8Array;
}

/** Hands the handler a way to run DS-induced removals once it knows the sender. */
export type InduceRemovals = (senderLeaf: number | undefined) => void;

/**
 * A request that changes a group: one locked read, decrypt, handler, encrypt, one write, and the
 * fan-outs into the outbox — all in one transaction. DS-induced removals found on the way are
 * kept (and announced) even when the request itself is refused.
 */
export async function writeGroup<R>(
  deps: DsDeps,
  opened: OpenedRequest<unknown>,
  uuid: Uint8Array,
  earKey: Uint8Array,
  handler: (group: DsGroup, induce: InduceRemovals) => Promise<WriteOutcome<R>>,
): Promise<R> {
  const groupId: common.QualifiedGroupId = { uuid, domain: deps.ctx.domain };
  let wroteFanOuts = false;
  const outcome = await transaction(deps.db, async (tx) => {
    wroteFanOuts = false;
    const row = await lockGroup(tx, uuid);
    if (row === undefined) throw new NotFoundError("no such group");
    const plaintext = decryptState(row, earKey);
    const group = DsGroup.open(decodeGroupState(plaintext), deps.ctx);
    const reports = openReports(deps, row, group);
    const induced: FanOutPlan[] = [];
    let inducedFor: { leaf: number | undefined } | undefined;
    const induce: InduceRemovals = (leaf) => {
      inducedFor = { leaf };
      induced.push(...group.collectRequiredRemovals(reports, leaf));
    };
    let result: WriteOutcome<R>;
    try {
      result = await handler(group, induce);
    } catch (error) {
      if (!isRefusal(error) || inducedFor === undefined || (induced.length === 0 && reports.length === 0))
        throw error;
      // Refused, but the removals found are the group's business from now on: store and announce them.
      const clean = DsGroup.open(decodeGroupState(plaintext), deps.ctx);
      const notices = clean.collectRequiredRemovals(reports, inducedFor.leaf);
      await updateGroup(tx, uuid, {
        state: encryptState(deps, uuid, clean, earKey),
        lastActiveMonth: row.lastActiveMonth,
      });
      await writeOutbox(
        tx,
        encodeFanOuts(notices, groupId, new Date(deps.ctx.now()), deps.fanOutSubject),
        deps.outboxSealer,
      );
      wroteFanOuts = notices.length > 0;
      return { error };
    }
    await claimRequest(deps, tx, opened);
    const fanOuts = [...induced, ...result.fanOuts];
    if (result.deleteGroup === true) await deleteGroupRow(tx, uuid);
    else
      await updateGroup(tx, uuid, {
        state: encryptState(deps, uuid, group, result.earKeyAfter ?? earKey),
        lastActiveMonth: result.active ? activityMonth(deps.ctx.now()) : row.lastActiveMonth,
      });
    await writeOutbox(
      tx,
      encodeFanOuts(fanOuts, groupId, new Date(deps.ctx.now()), deps.fanOutSubject),
      deps.outboxSealer,
    );
    wroteFanOuts = fanOuts.length > 0;
    return { value: result.result };
  });
  if (wroteFanOuts) deps.onFanOut();
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/** A request that only reads a group: one read, decrypt. */
export async function readGroupState(deps: DsDeps, uuid: Uint8Array, earKey: Uint8Array): Promise<DsGroup> {
  const row = await readGroup(deps.db, uuid);
  if (row === undefined) throw new NotFoundError("no such group");
  return DsGroup.open(decodeGroupState(decryptState(row, earKey)), deps.ctx);
}

/**
 * Claims the request id and writes fan-outs in one transaction without touching the group row
 * (SendMessage never rewrites the state).
 */
export async function fanOutOnly(
  deps: DsDeps,
  opened: OpenedRequest<unknown>,
  groupId: common.QualifiedGroupId,
  plans: FanOutPlan[],
): Promise<Date> {
  const timestamp = new Date(deps.ctx.now());
  const records = encodeFanOuts(plans, groupId, timestamp, deps.fanOutSubject);
  await transaction(deps.db, async (tx) => {
    await claimRequest(deps, tx, opened);
    await writeOutbox(tx, records, deps.outboxSealer);
  });
  if (records.length > 0) deps.onFanOut();
  return timestamp;
}
