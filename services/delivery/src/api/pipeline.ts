import {
  AeadLabel,
  DecryptionError,
  decodeHpkeCiphertext,
  decryptAtRest,
  encryptAtRest,
  HpkeKeyPair,
  hpkeOpen,
  randomBytes,
} from "@phoenix/crypto";
import { common, type MessageDecoder, rpcLabel } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { transaction } from "@phoenix/runtime/db";
import { InvalidArgumentError, NotFoundError, UnauthenticatedError } from "@phoenix/runtime/errors";
import {
  type ClaimedWrite,
  claimAndWriteOutbox,
  type OutboxMessage,
  writeOutbox,
} from "@phoenix/runtime/outbox";
import { seenRequestRecorded } from "@phoenix/runtime/replay";
import {
  DEFAULT_REFUSALS,
  type OpenedEnvelope,
  openEnvelope,
  type ReplayClaim,
  replayParts,
  type SignedRequestPolicy,
  type TbsWithHeader,
  verifyEnvelope,
} from "@phoenix/runtime/signed-request";
import { isRefusal, malformed, unauthenticated, wrongEarKey } from "../domain/errors.js";
import { encodeFanOuts, type FanOutPlan } from "../domain/fan-out.js";
import { DsGroup } from "../domain/group.js";
import { decodeGroupState, encodeGroupState, type QueueRef } from "../domain/group-state.js";
import { dayOf, decodeQueueReports, isLive } from "../domain/queue-reports.js";
import { type CachedState, GroupStateCache } from "../domain/state-cache.js";
import {
  activityMonth,
  claimedGroupUpdate,
  deleteGroupRow,
  type LoadedRow,
  lockGroup,
  readGroup,
  updateGroup,
} from "../store/group-store.js";
import type { DeliveryContext } from "./context.js";

const { ErrorReason } = common;

/** HPKE label of queue-deleted reports sealed to a group's report key. */
export const QUEUE_REPORT_LABEL = "DsQueueReport";
const EAR_KEY_LENGTH = 32;

/** How the DS authenticates signed requests: the runtime's authenticator, DS wording. */
export function requestPolicy(ctx: DeliveryContext): SignedRequestPolicy<Database> {
  return {
    window: ctx.replayWindow,
    now: () => ctx.now(),
    replay: ctx.seenRequests,
    refusals: {
      invalidKey: (who) =>
        unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} has no Ed25519 signature key`),
    },
  };
}

/** A `…Tbs` of a request about one group. */
type GroupTbs = TbsWithHeader & { groupId: common.QualifiedGroupId | undefined };

/** A signed group request after the opening every handler shares; its signature is verified later. */
export interface GroupRequest<T> {
  envelope: OpenedEnvelope<T>;
  tbs: T;
  header: common.RequestHeader;
  /** The group's 16 uuid bytes (a group of this homeserver). */
  uuid: Uint8Array;
  /** The key the caller says opens the group state. */
  earKey: Uint8Array;
}

/**
 * The opening of every signed group RPC: decodes the `…Tbs` and checks its header (label of
 * `method`, request id, timestamp window), the EAR key's shape and the group id. The signature is
 * verified once the group's state names the sender's key ({@link verifySigner}).
 */
export function openGroupRequest<T extends GroupTbs>(
  ctx: DeliveryContext,
  request: { signed: common.Signed | undefined; groupStateEarKey: Uint8Array },
  type: MessageDecoder<T>,
  method: { path: string },
): GroupRequest<T> {
  const envelope = openEnvelope(requestPolicy(ctx), request.signed, type, rpcLabel(method));
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(ctx, envelope.tbs.groupId, "tbs.group_id");
  return { envelope, tbs: envelope.tbs, header: envelope.header, uuid, earKey };
}

/** A DS request id is claimed as it is (no sender scope): a DS marker covers the id alone. */
const DS_REPLAY_SCOPE: readonly Uint8Array[] = [];

/**
 * Claims a verified request's id in `tx` (the request's own transaction, or the pool for a read);
 * `replay` is the same claim as data, for a write that makes it part of its own statement.
 */
export interface RequestClaim {
  (tx: Database): Promise<void>;
  readonly replay: ReplayClaim;
}

/**
 * Verifies the request as signed with `key` (`undefined`: `who` is not in the group) and returns
 * the claim of its request id. Every signed DS request claims its id, reads included, so a
 * captured request is refused by every replica within its window.
 */
export async function verifySigner(
  ctx: DeliveryContext,
  request: GroupRequest<unknown>,
  key: Uint8Array | undefined,
  who: string,
): Promise<RequestClaim> {
  if (key === undefined)
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} is not in the group`);
  const verified = await verifyEnvelope(requestPolicy(ctx), request.envelope, {
    signer: who,
    key,
    replayScope: DS_REPLAY_SCOPE,
  });
  return Object.assign((tx: Database) => verified.claim(tx), { replay: verified.replay });
}

/** Checks a qualified group id of this homeserver; returns its 16 uuid bytes. */
export function localGroupId(
  ctx: DeliveryContext,
  groupId: common.QualifiedGroupId | undefined,
  field: string,
): Uint8Array {
  if (groupId === undefined) throw malformed(field, "missing");
  if (groupId.uuid.length !== 16) throw malformed(`${field}.uuid`, "must be 16 bytes");
  if (groupId.domain !== ctx.domain)
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

/** The header's leaf index (DS leaf auth). */
export function senderLeaf(header: common.RequestHeader): number {
  if (header.sender?.$case !== "leafIndex")
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, "header sender must be a leaf_index");
  return header.sender.value;
}

/** Verifies the request as signed by the leaf named in its header; returns the leaf and the claim. */
export async function authenticateLeaf(
  ctx: DeliveryContext,
  group: DsGroup,
  request: GroupRequest<unknown>,
): Promise<{ leaf: number; claim: RequestClaim }> {
  const leaf = senderLeaf(request.header);
  const claim = await verifySigner(ctx, request, group.signatureKeyOf(leaf), `leaf ${leaf}`);
  return { leaf, claim };
}

/** Decrypts a group's stored state with the request's EAR key. */
export function decryptState(groupId: Uint8Array, state: Uint8Array, earKey: Uint8Array): Uint8Array {
  try {
    return decryptAtRest(earKey, AeadLabel.GroupState, state, { aad: groupId });
  } catch (error) {
    if (error instanceof DecryptionError) throw wrongEarKey();
    throw error;
  }
}

/** A group's state encrypted for its row, with a fresh state tag and its encoded size. */
export interface SealedState {
  state: Uint8Array;
  /** New on every write: what the state cache matches (see GroupStateCache). */
  stateTag: Uint8Array;
  /** Encoded (unpadded) size: the state cache's weight of the decoded state. */
  plainBytes: number;
}

/** Encodes and encrypts a group's state for its row. */
export function sealState(
  ctx: DeliveryContext,
  groupId: Uint8Array,
  group: DsGroup,
  earKey: Uint8Array,
): SealedState {
  const plain = encodeGroupState(group.toState());
  return {
    state: encryptAtRest(earKey, AeadLabel.GroupState, plain, { aad: groupId, buckets: ctx.paddingBuckets }),
    stateTag: newStateTag(),
    plainBytes: plain.byteLength,
  };
}

/** 16 random bytes: never repeats, unlike a counter restarted by a deleted and re-created group. */
export function newStateTag(): Uint8Array {
  return randomBytes(16);
}

/** What a request opened: the group's decoded state as stored (shared: never changed). */
interface OpenedState {
  base: DsGroup;
  /** The request's key matched a cached state whose tag the row still carries. */
  hit: boolean;
}

/**
 * The state a request's read found, decoded: the cached one when the row still carries its tag
 * (the read then returned no `state`), else the row's state decrypted with the request's key
 * (a wrong key is refused here) and decoded — and cached for the next request with that key.
 */
function openState(
  ctx: DeliveryContext,
  uuid: Uint8Array,
  row: LoadedRow,
  earKey: Uint8Array,
  keyTag: Uint8Array,
  cached: CachedState<DsGroup> | undefined,
): OpenedState {
  if (row.state === undefined) {
    // The read returns no state only when the row's tag equals the one asked about.
    if (cached === undefined || !GroupStateCache.matches(cached, row.stateTag))
      throw new Error("the group row came back without its state although no cached state matches it");
    ctx.stateCache.touch(uuid, cached);
    return { base: cached.base, hit: true };
  }
  const plaintext = decryptState(uuid, row.state, earKey);
  const base = DsGroup.open(decodeGroupState(plaintext), ctx);
  ctx.stateCache.set(uuid, row.stateTag, keyTag, base, plaintext.byteLength);
  return { base, hit: false };
}

/** The live queue-deleted reports of a row, opened (lapsed ones are dropped unopened). */
function openReports(ctx: DeliveryContext, row: LoadedRow, group: DsGroup): QueueRef[] {
  const today = dayOf(ctx.now());
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

/** What a write handler gets besides the group. */
export interface GroupWrite {
  induce: InduceRemovals;
  /** Verifies the request as signed by the header's leaf and claims its id; returns the leaf. */
  authenticateLeaf(): Promise<number>;
  /** Verifies the request as signed with `key` (see {@link verifySigner}) and claims its id. */
  verify(key: Uint8Array | undefined, who: string): Promise<void>;
}

/**
 * A request that changes a group: one locked read, decrypt, handler, encrypt, one write, and the
 * fan-outs into the outbox — all in one transaction. The handler authenticates the request
 * (`GroupWrite`), which claims its id in that transaction before the handler acts on it, so a
 * replay is refused as such, by every replica. DS-induced removals found on the way are kept (and
 * announced) even when the request itself is refused.
 */
export async function writeGroup<R>(
  ctx: DeliveryContext,
  request: GroupRequest<unknown>,
  handler: (group: DsGroup, write: GroupWrite) => Promise<WriteOutcome<R>>,
): Promise<R> {
  const { uuid, earKey } = request;
  const groupId: common.QualifiedGroupId = { uuid, domain: ctx.domain };
  const keyTag = ctx.stateCache.keyTag(earKey);
  let wroteFanOuts = false;
  // This request's own claim was made in the transaction (not deferred into the one write).
  let claimedInTx = false;
  // What to cache once the transaction committed (undefined: forget the group's entry).
  let after: { sealed: SealedState; keyTag: Uint8Array; group: DsGroup } | "deleted" | undefined;
  const outcome = await transaction(ctx.db, async (tx) => {
    wroteFanOuts = false;
    after = undefined;
    const cached = ctx.stateCache.lookup(uuid, keyTag);
    const row = await lockGroup(tx, uuid, cached?.stateTag);
    if (row === undefined) {
      ctx.stateCache.delete(uuid);
      throw new NotFoundError("no such group");
    }
    const { base } = openState(ctx, uuid, row, earKey, keyTag, cached);
    // The handler changes its own fork; `base` stays as stored (and as cached).
    const group = base.fork();
    const reports = openReports(ctx, row, group);
    const induced: FanOutPlan[] = [];
    let inducedFor: { leaf: number | undefined } | undefined;
    let claimed = false;
    claimedInTx = false;
    // The claim as data when it can go into the request's one write statement (the usual case),
    // else it is made here and now (a marker key rotation needs a second look).
    let pending: { marker: Uint8Array; claim: RequestClaim } | undefined;
    const claimHere = async (claim: RequestClaim) => {
      const marker = ctx.seenRequests.singleMarker(claim.replay.parts);
      if (marker !== undefined) pending = { marker, claim };
      else {
        await claim(tx);
        claimedInTx = true;
      }
      claimed = true;
    };
    const write: GroupWrite = {
      induce: (leaf) => {
        inducedFor = { leaf };
        induced.push(...group.collectRequiredRemovals(reports, leaf));
      },
      authenticateLeaf: async () => {
        const { leaf, claim } = await authenticateLeaf(ctx, group, request);
        await claimHere(claim);
        return leaf;
      },
      verify: async (key, who) => claimHere(await verifySigner(ctx, request, key, who)),
    };
    let result: WriteOutcome<R>;
    try {
      result = await handler(group, write);
      if (!claimed) throw new Error("a group write handler returned without authenticating its request");
    } catch (error) {
      if (!isRefusal(error) || inducedFor === undefined || (induced.length === 0 && reports.length === 0))
        throw error;
      // Refused, but the removals found are the group's business from now on: store and announce them.
      const clean = base.fork();
      const notices = clean.collectRequiredRemovals(reports, inducedFor.leaf);
      const sealed = sealState(ctx, uuid, clean, earKey);
      await updateGroup(tx, uuid, {
        state: sealed.state,
        stateTag: sealed.stateTag,
        lastActiveMonth: row.lastActiveMonth,
      });
      await writeOutbox(
        tx,
        encodeFanOuts(notices, groupId, new Date(ctx.now()), ctx.fanOutSubject),
        ctx.outboxSealer,
      );
      wroteFanOuts = notices.length > 0;
      after = { sealed, keyTag, group: clean };
      return { error };
    }
    const fanOuts = [...induced, ...result.fanOuts];
    const records = encodeFanOuts(fanOuts, groupId, new Date(ctx.now()), ctx.fanOutSubject);
    if (result.deleteGroup === true) {
      if (pending !== undefined) await pending.claim(tx);
      await deleteGroupRow(tx, uuid);
      await writeOutbox(tx, records, ctx.outboxSealer);
      after = "deleted";
    } else {
      const keyAfter = result.earKeyAfter ?? earKey;
      const sealed = sealState(ctx, uuid, group, keyAfter);
      const state = {
        state: sealed.state,
        stateTag: sealed.stateTag,
        lastActiveMonth: result.active ? activityMonth(ctx.now()) : row.lastActiveMonth,
      };
      if (pending === undefined) {
        await updateGroup(tx, uuid, state);
        await writeOutbox(tx, records, ctx.outboxSealer);
      } else {
        // The request's one write: claim, state and fan-outs in one statement.
        await writeClaimed(ctx, tx, pending, records, claimedGroupUpdate(tx, uuid, state));
      }
      after = {
        sealed,
        keyTag: keyAfter === earKey ? keyTag : ctx.stateCache.keyTag(keyAfter),
        group,
      };
    }
    wroteFanOuts = fanOuts.length > 0;
    return { value: result.result };
  }).catch(async (error: unknown) => {
    throw await replayOr(ctx, request, error);
  });
  // Committed (a transaction that did not commit threw above, leaving the stored state and any
  // cached copy of it as they were): the written state is the stored one from now on, and the
  // handler is done with it.
  const written = after as typeof after;
  if (written === "deleted") ctx.stateCache.delete(uuid);
  else if (written !== undefined)
    ctx.stateCache.set(
      uuid,
      written.sealed.stateTag,
      written.keyTag,
      written.group,
      written.sealed.plainBytes,
    );
  if (wroteFanOuts) ctx.onFanOut();
  // Refused, with removals stored: when the request's own claim committed with them, the id is
  // claimed by this very request, not by an earlier one.
  if ("error" in outcome) throw claimedInTx ? outcome.error : await replayOr(ctx, request, outcome.error);
  return outcome.value;
}

/**
 * A refusal of a write whose request id is already claimed becomes the replay refusal: a client
 * resending a request whose answer was lost learns that it went through, although the copy would
 * now be refused for something else (its epoch is gone, the EAR key rotated with it). The id is
 * looked up only on this path (one read). The copy's signature is not verified here — the state
 * may not even open under its key — so an unsigned probe learns whether an id it already knows was
 * used, which tells nothing new to whoever saw the request (the DS's replay scope is the id alone).
 */
async function replayOr(
  ctx: DeliveryContext,
  request: GroupRequest<unknown>,
  error: unknown,
): Promise<unknown> {
  if (!isRefusal(error)) return error;
  const refusals = { ...DEFAULT_REFUSALS, ...requestPolicy(ctx).refusals };
  const replay = refusals.replayed("the request");
  if (error instanceof UnauthenticatedError && error.message === replay.message) return error;
  const marker = ctx.seenRequests.marker(replayParts(DS_REPLAY_SCOPE, request.header.requestId));
  return (await seenRequestRecorded(ctx.db, marker)) ? replay : error;
}

/** A request that only reads a group: one read (no state transferred on a cache hit), decrypt. */
export async function readGroupState(
  ctx: DeliveryContext,
  uuid: Uint8Array,
  earKey: Uint8Array,
): Promise<DsGroup> {
  const keyTag = ctx.stateCache.keyTag(earKey);
  const cached = ctx.stateCache.lookup(uuid, keyTag);
  const row = await readGroup(ctx.db, uuid, cached?.stateTag);
  if (row === undefined) {
    ctx.stateCache.delete(uuid);
    throw new NotFoundError("no such group");
  }
  return openState(ctx, uuid, row, earKey, keyTag, cached).base.fork();
}

/**
 * Claims the request id and writes fan-outs without touching the group row (SendMessage never
 * rewrites the state): one statement (`claimAndWriteOutbox`), or a transaction of two while the
 * replay marker key is being rotated (a claim then also looks for markers under the old keys).
 */
export async function fanOutOnly(
  ctx: DeliveryContext,
  claim: RequestClaim,
  groupId: common.QualifiedGroupId,
  plans: FanOutPlan[],
): Promise<Date> {
  const timestamp = new Date(ctx.now());
  const records = encodeFanOuts(plans, groupId, timestamp, ctx.fanOutSubject);
  const marker = ctx.seenRequests.singleMarker(claim.replay.parts);
  if (marker === undefined) {
    await transaction(ctx.db, async (tx) => {
      await claim(tx);
      await writeOutbox(tx, records, ctx.outboxSealer);
    });
  } else {
    await writeClaimed(ctx, ctx.db, { marker, claim }, records);
  }
  if (records.length > 0) ctx.onFanOut();
  return timestamp;
}

/**
 * The request's one write: its id's claim, the fan-outs and `alsoWrite` in one statement
 * (`claimAndWriteOutbox`); nothing is written and the request is refused as a replay when the id
 * was claimed before.
 */
async function writeClaimed(
  ctx: DeliveryContext,
  db: Database,
  pending: { marker: Uint8Array; claim: RequestClaim },
  records: readonly OutboxMessage[],
  alsoWrite?: ClaimedWrite,
): Promise<void> {
  const { marker, claim } = pending;
  const claimed = await claimAndWriteOutbox(
    db,
    { marker, expiresAt: claim.replay.expiresAt },
    records,
    ctx.outboxSealer,
    alsoWrite,
  );
  if (!claimed) throw claim.replay.refusal();
}
