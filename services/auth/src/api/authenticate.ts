import { ClientCredential, VerifyingKey } from "@phoenix/crypto";
import { common, type MessageDecoder } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { monthOf } from "../domain/coarse-time.js";
import { malformed, tooLarge, unauthenticated } from "../domain/errors.js";
import { type ClientKey, parseClientId, parseHandleHash } from "../domain/ids.js";
import { Limits } from "../domain/limits.js";
import { type CheckedHeader, checkHeader, type SenderKind } from "../domain/request-header.js";
import { type ClientRow, findClient, touchClient } from "../store/clients.js";
import { findLiveHandle, type HandleRow } from "../store/handles.js";

const Reason = common.ErrorReason;

type WithHeader = { header: common.RequestHeader | undefined };

/** A signed request whose header passed the checks; its signature is not verified yet. */
export interface OpenedRequest<T> {
  tbs: T;
  header: CheckedHeader;
  signed: common.Signed;
  label: string;
}

/**
 * Decodes the `…Tbs` of a signed request and checks its header (label, replay window, sender
 * kind). Nothing decoded here may be acted on before `verifySignature` succeeded.
 */
export function openSigned<T extends WithHeader>(
  ctx: AuthContext,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  sender: SenderKind | "none",
  now: Date,
): OpenedRequest<T> {
  if (!signed) throw malformed("signed", "missing");
  if (signed.tbs.length > Limits.signedTbs) throw tooLarge("signed.tbs", Limits.signedTbs, signed.tbs.length);
  if (signed.tbs.length === 0) throw malformed("signed.tbs", "empty");
  if (signed.signature.length !== 64)
    throw malformed("signed.signature", "must be a 64-byte Ed25519 signature");
  let tbs: T;
  try {
    tbs = type.decode(signed.tbs);
  } catch (error) {
    throw malformed("signed.tbs", `does not decode: ${(error as Error).message.slice(0, 100)}`);
  }
  const header = checkHeader(tbs.header, { label, sender, now, window: ctx.window });
  return { tbs, header, signed, label };
}

/** Verifies the labelled signature over the exact `tbs` bytes; UNAUTHENTICATED otherwise. */
export function verifySignature(request: OpenedRequest<unknown>, key: VerifyingKey | Uint8Array): void {
  const verifying = key instanceof VerifyingKey ? key : VerifyingKey.fromBytes(key);
  if (!verifying.verify(request.label, request.signed.tbs, request.signed.signature)) {
    throw unauthenticated("request signature does not verify", Reason.ERROR_REASON_BAD_SIGNATURE);
  }
}

/**
 * Remembers the request id of a verified request for the replay window (in the caller's
 * transaction); a second request with the same sender and id is UNAUTHENTICATED.
 */
export async function guardReplay(
  ctx: AuthContext,
  tx: Database,
  request: OpenedRequest<unknown>,
  senderBytes: Uint8Array,
): Promise<void> {
  const { header } = request;
  const parts = [
    new TextEncoder().encode(request.header.sender?.$case ?? "none"),
    senderBytes,
    header.requestId,
  ];
  const expiresAt = new Date(header.timestamp.getTime() + ctx.window.maxAgeMs + ctx.window.maxFutureSkewMs);
  if (!(await ctx.replay.claim(tx, parts, expiresAt))) {
    throw unauthenticated("request id already used (replayed request)", Reason.ERROR_REASON_REPLAYED_REQUEST);
  }
}

/** The replay-guard sender bytes of a client: client uuid ‖ user uuid. */
export function clientKeyBytes(key: ClientKey): Uint8Array {
  const out = new Uint8Array(32);
  out.set(key.clientUuid, 0);
  out.set(key.userUuid, 16);
  return out;
}

/** An authenticated client request. */
export interface ClientRequest<T> {
  tbs: T;
  client: ClientRow;
  clientKey: ClientKey;
}

/** How strictly authenticateClient treats the client credential's chain. */
export interface ClientAuthOptions {
  /**
   * Accept a client whose own credential is unexpired and unrevoked although an AS credential
   * above it (intermediate or root) was revoked. Only RenewClientCredential sets it: the AS knows
   * the client's key from its own database, so after an intermediate leak clients can still move
   * to a credential under the new intermediate instead of being locked out.
   */
  allowRevokedSigner?: boolean;
}

const REVOCATION_MESSAGES = {
  client: "the client credential has been revoked",
  intermediate: "the AS intermediate credential that signed the client credential has been revoked",
  root: "the AS root credential above the client credential has been revoked",
  "unknown-intermediate": "the client credential was signed by an AS intermediate this AS does not know",
} as const;

/**
 * Refuses (UNAUTHENTICATED, INVALID_CREDENTIAL) a client whose credential expired or is on the
 * revocation list, itself or through its signer chain (see ClientAuthOptions).
 */
async function checkCredentialStanding(
  ctx: AuthContext,
  tx: Database,
  client: ClientRow,
  now: Date,
  options: ClientAuthOptions,
): Promise<void> {
  if (client.credentialNotAfter.getTime() < now.getTime()) {
    throw unauthenticated("the client credential has expired", Reason.ERROR_REASON_INVALID_CREDENTIAL);
  }
  const credential = ClientCredential.decode(client.credential);
  const revoked = await ctx.keyring.revocationOf(tx, credential);
  if (revoked === undefined || (revoked !== "client" && options.allowRevokedSigner)) return;
  throw unauthenticated(REVOCATION_MESSAGES[revoked], Reason.ERROR_REASON_INVALID_CREDENTIAL);
}

/**
 * Authenticates a request signed by a registered client (header sender `client`), inside `tx`:
 * header checks, the client must exist on this domain, the signature must verify with its
 * credential key, the credential must be unexpired and neither it nor the AS credentials above it
 * revoked, the request id must be fresh. Refreshes the client's activity month.
 */
export async function authenticateClient<T extends WithHeader>(
  ctx: AuthContext,
  tx: Database,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  now: Date,
  options: ClientAuthOptions = {},
): Promise<ClientRequest<T>> {
  const request = openSigned(ctx, signed, type, label, "client", now);
  const sender = request.header.sender;
  if (sender?.$case !== "client") throw malformed("tbs.header.sender", "must be a client");
  const clientId = parseClientId(sender.value, "tbs.header.sender.client");
  if (clientId.userId.domain !== ctx.config.AS_DOMAIN) {
    throw unauthenticated(
      `client of ${clientId.userId.domain} is not registered here`,
      Reason.ERROR_REASON_UNKNOWN_SENDER,
    );
  }
  const clientKey = { userUuid: clientId.userId.uuid, clientUuid: clientId.clientUuid };
  const client = await findClient(tx, clientKey);
  if (!client) throw unauthenticated("unknown client", Reason.ERROR_REASON_UNKNOWN_SENDER);
  verifySignature(request, client.signatureKey);
  await checkCredentialStanding(ctx, tx, client, now, options);
  await guardReplay(ctx, tx, request, clientKeyBytes(clientKey));
  await touchClient(tx, clientKey, monthOf(now));
  return { tbs: request.tbs, client, clientKey };
}

/** An authenticated handle request. */
export interface HandleRequest<T> {
  tbs: T;
  handle: HandleRow;
}

/**
 * Authenticates a request signed with a handle's verifying key (header sender `handle_hash`).
 * An unknown or expired handle is NOT_FOUND (the contract of every handle RPC).
 */
export async function authenticateHandle<T extends WithHeader>(
  ctx: AuthContext,
  tx: Database,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  now: Date,
): Promise<HandleRequest<T>> {
  const request = openSigned(ctx, signed, type, label, "handleHash", now);
  const sender = request.header.sender;
  if (sender?.$case !== "handleHash") throw malformed("tbs.header.sender", "must be a handle hash");
  const handleHash = parseHandleHash(sender.value, "tbs.header.sender.handle_hash");
  const handle = await findLiveHandle(tx, handleHash, now);
  if (!handle) throw new NotFoundError("no such handle, or it expired");
  verifySignature(request, handle.verifyingKey);
  await guardReplay(ctx, tx, request, handleHash);
  return { tbs: request.tbs, handle };
}
