import {
  checkTimestampWindow,
  FutureTimestampError,
  StaleTimestampError,
  VerifyingKey,
} from "@phoenix/crypto";
import { common, type MessageDecoder, rpcLabel } from "@phoenix/proto";
import {
  malformedField as malformed,
  unauthenticatedFor as unauthenticated,
} from "../errors/phoenix-detail.js";
import {
  type CheckedRequestHeader,
  type ExpectedHeader,
  type OpenedSignedRequest,
  REQUEST_ID_LENGTH,
  type RequestWindow,
  SIGNATURE_LENGTH,
} from "./signed-request.js";

const { ErrorReason } = common;

/** A `…Tbs` message: every signed request starts with a RequestHeader. */
export type TbsWithHeader = { header: common.RequestHeader | undefined };

/**
 * Records request ids for the replay window; `ReplayStore` (runtime/replay) is one. `Tx` is the
 * request's transaction, so a request that rolls back leaves no claim behind.
 */
export interface ReplayClaimer<Tx> {
  /** Claims `parts` until `expiresAt` in `tx`; false when they were claimed before (a replay). */
  claim(tx: Tx, parts: readonly Uint8Array[], expiresAt: Date): Promise<boolean>;
}

/** The key a service resolved for the sender a header names. */
export interface SignerKey {
  /** Names the signer in refusals ("the client record", "leaf 3", a domain). */
  signer: string;
  /** The sender's Ed25519 public key bytes, or its current keys (any one may verify). */
  key: Uint8Array | readonly VerifyingKey[];
  /** Fetches the sender's keys again once when none verifies (picks up a key rotation). */
  refresh?: () => Promise<readonly VerifyingKey[] | undefined>;
  /**
   * What the request id is unique within (the sender's identity bytes): the replay claim covers
   * these parts followed by the request id.
   */
  replayScope: readonly Uint8Array[];
}

/** Why a step refused a request; each service keeps its wire messages by overriding some. */
export interface SignedRequestRefusals {
  /** No `Signed` at all. */
  missing(field: string): Error;
  /** A tbs longer than `maxTbsBytes`. */
  tbsTooLarge(field: string, limit: number, actual: number): Error;
  /** An empty tbs (`null`: not refused here; it fails as a missing header). */
  emptyTbs: ((field: string) => Error) | null;
  /** A signature of the wrong length (`null`: not refused here; it fails to verify). */
  signatureLength: ((field: string) => Error) | null;
  /** The tbs does not decode as the RPC's `…Tbs`. */
  undecodable(field: string, cause: unknown): Error;
  headerMissing(): Error;
  wrongLabel(actual: string, expected: string): Error;
  requestIdLength(): Error;
  timestampMissing(): Error;
  /** The timestamp lies outside the replay window (`error` says which side). */
  outsideWindow(error: StaleTimestampError | FutureTimestampError): Error;
  /** The resolved key is not an Ed25519 public key. */
  invalidKey(signer: string): Error;
  badSignature(signer: string): Error;
  /** The request id was claimed before (`signer` as `resolveKey` named it). */
  replayed(signer: string): Error;
}

/** The refusals of the QS and DS (and the runtime's `checkRequestHeader`). */
export const DEFAULT_REFUSALS: SignedRequestRefusals = {
  missing: (field) => malformed(field, "missing"),
  tbsTooLarge: (field, limit, actual) => malformed(`${field}.tbs`, `${actual} bytes, the limit is ${limit}`),
  emptyTbs: null,
  signatureLength: (field) => malformed(`${field}.signature`, `must be ${SIGNATURE_LENGTH} bytes`),
  undecodable: (field) => malformed(`${field}.tbs`, "does not decode"),
  headerMissing: () => malformed("tbs.header", "missing"),
  wrongLabel: (actual, expected) =>
    unauthenticated(
      ErrorReason.ERROR_REASON_WRONG_LABEL,
      `header label "${actual.slice(0, 100)}" is not this RPC's label "${expected}"`,
    ),
  requestIdLength: () => malformed("tbs.header.request_id", `must be ${REQUEST_ID_LENGTH} bytes`),
  timestampMissing: () => malformed("tbs.header.timestamp", "missing"),
  outsideWindow: (error) =>
    unauthenticated(
      ErrorReason.ERROR_REASON_STALE_TIMESTAMP,
      `tbs.header.timestamp: ${error.message}, outside the replay window`,
    ),
  invalidKey: (signer) =>
    unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${signer} has no valid Ed25519 key`),
  badSignature: (signer) =>
    unauthenticated(ErrorReason.ERROR_REASON_BAD_SIGNATURE, `signature of ${signer} does not verify`),
  replayed: () => unauthenticated(ErrorReason.ERROR_REASON_REPLAYED_REQUEST, "request id already used"),
};

/** How one service authenticates signed requests. */
export interface SignedRequestPolicy<Tx> {
  window: RequestWindow;
  /** The service clock, ms since the epoch. */
  now(): number;
  replay: ReplayClaimer<Tx>;
  /** The service's wording of the refusals it words differently from {@link DEFAULT_REFUSALS}. */
  refusals?: Partial<SignedRequestRefusals>;
  /** Longest accepted tbs (unset: no limit here). */
  maxTbsBytes?: number;
  /**
   * `after-signature`: the window is checked once the signature verified, so a refusal from
   * `resolveKey` (a peer the policy denies) wins over a stale timestamp. Default: before the key
   * is resolved, so a stale request costs no key lookup.
   */
  freshness?: "before-key" | "after-signature";
  /** Checks the header's sender before anything else of the header (e.g. its kind). */
  checkSender?(header: common.RequestHeader): void;
  /** Names the request in window refusals (default "request"). */
  describeRequest?(header: common.RequestHeader): string;
}

/** A decoded signed request whose header passed the checks; its signature is not verified yet. */
export interface OpenedEnvelope<T> {
  tbs: T;
  header: common.RequestHeader;
  signed: common.Signed;
  label: string;
}

/** What a request id's claim covers: the sender's replay scope, then the id. */
export function replayParts(replayScope: readonly Uint8Array[], requestId: Uint8Array): Uint8Array[] {
  return [...replayScope, requestId];
}

/** A request's id claim as data: for a write that makes the claim part of its own statement. */
export interface ReplayClaim {
  /** What the claim covers: the sender's replay scope followed by the request id. */
  parts: readonly Uint8Array[];
  /** Until when the claim must be kept (past the window and any skew). */
  expiresAt: Date;
  /** The refusal of a replay (the policy's `replayed`), for a caller that finds the id claimed. */
  refusal(): Error;
}

/** A request whose signature verified; `claim` it in the transaction that does its work. */
export interface AuthenticatedSignedRequest<T, K extends SignerKey, Tx> extends OpenedEnvelope<T> {
  /** What `resolveKey` returned. */
  signer: K;
  /** Claims the request id in `tx`; refuses a replay (the policy's `replayed`). */
  claim(tx: Tx): Promise<void>;
  /** The same claim as data (see `claimAndWriteOutbox`). */
  replay: ReplayClaim;
}

function refusalsOf(policy: { refusals?: Partial<SignedRequestRefusals> }): SignedRequestRefusals {
  return { ...DEFAULT_REFUSALS, ...policy.refusals };
}

/**
 * Decodes a signed request (`field` names it in refusals) and checks its header: sender (the
 * policy's hook), label, request id length, timestamp present and — unless the policy checks it
 * after the signature — inside the replay window.
 */
export function openEnvelope<T extends TbsWithHeader>(
  policy: Omit<SignedRequestPolicy<unknown>, "replay">,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  field = "signed",
): OpenedEnvelope<T> {
  const refuse = refusalsOf(policy);
  if (signed === undefined) throw refuse.missing(field);
  if (policy.maxTbsBytes !== undefined && signed.tbs.length > policy.maxTbsBytes)
    throw refuse.tbsTooLarge(field, policy.maxTbsBytes, signed.tbs.length);
  if (signed.tbs.length === 0 && refuse.emptyTbs !== null) throw refuse.emptyTbs(field);
  if (signed.signature.length !== SIGNATURE_LENGTH && refuse.signatureLength !== null)
    throw refuse.signatureLength(field);
  let tbs: T;
  try {
    tbs = type.decode(signed.tbs);
  } catch (error) {
    throw refuse.undecodable(field, error);
  }
  const header = checkHeader(policy, refuse, tbs.header, label);
  return { tbs, header, signed, label };
}

function checkHeader(
  policy: Omit<SignedRequestPolicy<unknown>, "replay">,
  refuse: SignedRequestRefusals,
  header: common.RequestHeader | undefined,
  label: string,
): common.RequestHeader {
  if (header === undefined) throw refuse.headerMissing();
  policy.checkSender?.(header);
  if (header.label !== label) throw refuse.wrongLabel(header.label, label);
  if (header.requestId.length !== REQUEST_ID_LENGTH) throw refuse.requestIdLength();
  const timestamp = header.timestamp;
  if (timestamp === undefined || Number.isNaN(timestamp.getTime())) throw refuse.timestampMissing();
  if (policy.freshness !== "after-signature") checkWindow(policy, refuse, header);
  return header;
}

/**
 * Checks the header of a signed request before its signature is verified, worded as the QS and
 * DS word it: the label must be the RPC's own (UNAUTHENTICATED / WRONG_LABEL), the request id 16
 * bytes and the timestamp present (INVALID_ARGUMENT / MALFORMED) and inside the replay window
 * (UNAUTHENTICATED / STALE_TIMESTAMP). The sender is the service's to check.
 */
export function checkRequestHeader(
  header: common.RequestHeader | undefined,
  expected: ExpectedHeader,
): CheckedRequestHeader {
  const policy = { window: expected.window, now: () => expected.now };
  const checked = checkHeader(policy, DEFAULT_REFUSALS, header, expected.label);
  return { header: checked, requestId: checked.requestId, timestamp: checked.timestamp as Date };
}

/**
 * Decodes the `…Tbs` of a signed request (`field` names it in refusals, default `signed`) and
 * checks its header with {@link checkRequestHeader}; the signature is verified afterwards.
 */
export function openSignedRequest<T extends TbsWithHeader>(
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  expected: ExpectedHeader & { field?: string },
): OpenedSignedRequest<T> {
  const policy = { window: expected.window, now: () => expected.now };
  const { tbs, header } = openEnvelope(policy, signed, type, expected.label, expected.field);
  return { tbs, header, signed: signed as common.Signed };
}

function checkWindow(
  policy: Pick<SignedRequestPolicy<unknown>, "now" | "window" | "describeRequest">,
  refuse: SignedRequestRefusals,
  header: common.RequestHeader,
): void {
  const timestamp = header.timestamp?.getTime() ?? Number.NaN;
  const subject = policy.describeRequest?.(header) ?? "request";
  try {
    checkTimestampWindow(timestamp, policy.now(), policy.window, subject);
  } catch (error) {
    if (error instanceof StaleTimestampError || error instanceof FutureTimestampError)
      throw refuse.outsideWindow(error);
    throw error;
  }
}

function verifies(keys: readonly VerifyingKey[], envelope: OpenedEnvelope<unknown>): boolean {
  const { signed, label } = envelope;
  if (signed.signature.length !== SIGNATURE_LENGTH) return false;
  return keys.some((key) => key.verify(label, signed.tbs, signed.signature));
}

/**
 * The one signed-request authenticator of the AS, DS, QS and federation gateway: decodes the
 * envelope, checks its header against the label of `method` (`rpcLabel`) and the replay window,
 * verifies the signature with the key `resolveKey` finds for the header's sender, and returns the
 * request with a `claim` of its request id to run in the request's own transaction.
 */
export async function authenticateSignedRequest<T extends TbsWithHeader, K extends SignerKey, Tx>(
  policy: SignedRequestPolicy<Tx>,
  request: {
    signed: common.Signed | undefined;
    type: MessageDecoder<T>;
    method: { path: string } | string;
    /** Names the `Signed` field in refusals (default `signed`). */
    field?: string;
  },
  resolveKey: (tbs: T, header: common.RequestHeader) => K | Promise<K>,
): Promise<AuthenticatedSignedRequest<T, K, Tx>> {
  const envelope = openEnvelope(
    policy,
    request.signed,
    request.type,
    rpcLabel(request.method),
    request.field,
  );
  return verifyEnvelope(policy, envelope, await resolveKey(envelope.tbs, envelope.header));
}

/**
 * The second half of {@link authenticateSignedRequest}, for a service that learns the sender's
 * key only after work on the opened request (the DS decrypts the group state first): verifies
 * the signature with `signer`'s key, checks the window if the policy defers it, and returns the
 * request with the `claim` of its id.
 */
export async function verifyEnvelope<T, K extends SignerKey, Tx>(
  policy: SignedRequestPolicy<Tx>,
  envelope: OpenedEnvelope<T>,
  signer: K,
): Promise<AuthenticatedSignedRequest<T, K, Tx>> {
  const refuse = refusalsOf(policy);
  let verified = verifySigner(refuse, envelope, signer.key, signer.signer);
  if (!verified && signer.refresh !== undefined) verified = await refreshed(signer.refresh, envelope);
  if (!verified) throw refuse.badSignature(signer.signer);
  if (policy.freshness === "after-signature") checkWindow(policy, refuse, envelope.header);
  const header = envelope.header;
  // Accepted while now - timestamp <= maxAge; the claim outlives that (and any skew) so a replay
  // can never find its marker swept.
  const expiresAt = new Date(
    (header.timestamp?.getTime() ?? 0) + policy.window.maxAgeMs + policy.window.maxFutureSkewMs,
  );
  const parts = replayParts(signer.replayScope, header.requestId);
  const refusal = () => refuse.replayed(signer.signer);
  return {
    ...envelope,
    signer,
    claim: async (tx: Tx) => {
      if (!(await policy.replay.claim(tx, parts, expiresAt))) throw refusal();
    },
    replay: { parts, expiresAt, refusal },
  };
}

async function refreshed(
  refresh: () => Promise<readonly VerifyingKey[] | undefined>,
  envelope: OpenedEnvelope<unknown>,
): Promise<boolean> {
  const keys = await refresh();
  return keys !== undefined && verifies(keys, envelope);
}

function verifySigner(
  refuse: SignedRequestRefusals,
  envelope: OpenedEnvelope<unknown>,
  key: Uint8Array | readonly VerifyingKey[],
  signer: string,
): boolean {
  if (!(key instanceof Uint8Array)) return verifies(key, envelope);
  let verifying: VerifyingKey;
  try {
    verifying = VerifyingKey.fromBytes(key);
  } catch {
    throw refuse.invalidKey(signer);
  }
  return verifies([verifying], envelope);
}
