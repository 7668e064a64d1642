import { ClientCredential } from "@phoenix/crypto";
import { common, type MessageDecoder } from "@phoenix/proto";
import { type Database, type Transaction, transaction } from "@phoenix/runtime/db";
import { NotFoundError, PermissionDeniedError } from "@phoenix/runtime/errors";
import {
  authenticateSignedRequest,
  type SignedRequestPolicy,
  type SignedRequestRefusals,
  type TbsWithHeader,
} from "@phoenix/runtime/signed-request";
import type { AuthContext } from "../context.js";
import { monthOf } from "../domain/coarse-time.js";
import { malformed, tooLarge, unauthenticated } from "../domain/errors.js";
import { type ClientKey, parseClientId, parseHandleHash } from "../domain/ids.js";
import { Limits } from "../domain/limits.js";
import { checkSenderKind, type SenderKind } from "../domain/request-header.js";
import { findClientStanding } from "../store/admin.js";
import { type ClientRow, touchClient } from "../store/clients.js";
import { findLiveHandle, type HandleRow } from "../store/handles.js";

const Reason = common.ErrorReason;

/** How the AS words the refusals of the runtime's signed-request authenticator. */
const AS_REFUSALS: Partial<SignedRequestRefusals> = {
  tbsTooLarge: (field, limit, actual) => tooLarge(`${field}.tbs`, limit, actual),
  emptyTbs: (field) => malformed(`${field}.tbs`, "empty"),
  signatureLength: (field) => malformed(`${field}.signature`, "must be a 64-byte Ed25519 signature"),
  undecodable: (field, error) =>
    malformed(`${field}.tbs`, `does not decode: ${(error as Error).message.slice(0, 100)}`),
  badSignature: () => unauthenticated("request signature does not verify", Reason.ERROR_REASON_BAD_SIGNATURE),
  replayed: () =>
    unauthenticated("request id already used (replayed request)", Reason.ERROR_REASON_REPLAYED_REQUEST),
};

/** The AS's signed-request policy at the handler's clock reading `now` (ms). */
export function requestPolicy(ctx: AuthContext, now: number): SignedRequestPolicy<Database> {
  return {
    window: ctx.window,
    now: () => now,
    replay: ctx.replay,
    maxTbsBytes: Limits.signedTbs,
    refusals: AS_REFUSALS,
  };
}

/**
 * The replay scope of a sender: its kind and its bytes, so a client and a handle with equal bytes
 * never share request ids.
 */
export function replayScope(kind: SenderKind, sender: Uint8Array): Uint8Array[] {
  return [new TextEncoder().encode(kind), sender];
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
  now: number,
  options: ClientAuthOptions,
): Promise<void> {
  if (client.credentialNotAfter.getTime() < now) {
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
export async function authenticateClient<T extends TbsWithHeader>(
  ctx: AuthContext,
  tx: Database,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  method: { path: string },
  now: number,
  options: ClientAuthOptions = {},
): Promise<ClientRequest<T>> {
  const request = await authenticateSignedRequest(
    requestPolicy(ctx, now),
    { signed, type, method },
    async (_tbs, header) => {
      checkSenderKind(header, "client");
      if (header.sender?.$case !== "client") throw malformed("tbs.header.sender", "must be a client");
      const clientId = parseClientId(header.sender.value, "tbs.header.sender.client");
      if (clientId.userId.domain !== ctx.config.AS_DOMAIN) {
        throw unauthenticated(
          `client of ${clientId.userId.domain} is not registered here`,
          Reason.ERROR_REASON_UNKNOWN_SENDER,
        );
      }
      const clientKey = { userUuid: clientId.userId.uuid, clientUuid: clientId.clientUuid };
      const found = await findClientStanding(tx, clientKey);
      if (!found) throw unauthenticated("unknown client", Reason.ERROR_REASON_UNKNOWN_SENDER);
      const { suspended, ...client } = found;
      const scope = replayScope("client", clientKeyBytes(clientKey));
      return { signer: "client", key: client.signatureKey, replayScope: scope, client, clientKey, suspended };
    },
  );
  const { client, clientKey, suspended } = request.signer;
  await checkCredentialStanding(ctx, tx, client, now, options);
  // After the signature verified: only the user's own clients learn of the suspension.
  if (suspended) throw new PermissionDeniedError("user suspended");
  await request.claim(tx);
  // The row just read shows the month already recorded: most requests need no write here.
  if (client.lastActiveAt.getTime() !== monthOf(now).getTime())
    await touchClient(tx, clientKey, monthOf(now));
  return { tbs: request.tbs, client, clientKey };
}

/** A client request opened by {@link asClient}: the authenticated request and its clock reading. */
export interface OpenedClientRequest<T> extends ClientRequest<T> {
  /** The handler's clock reading (ms), taken once before the transaction. */
  now: number;
}

/**
 * The opening of every client-signed RPC: reads the clock once, then in one transaction
 * authenticates `request.signed` (authenticateClient, replay claim included) and runs `body`.
 * The claim and the body's writes commit or roll back together; like the transaction, `body` may
 * run again after a serialization failure, so it keeps side effects other than writes to `tx` out.
 */
export function asClient<T extends TbsWithHeader, R>(
  ctx: AuthContext,
  request: { signed: common.Signed | undefined },
  type: MessageDecoder<T>,
  method: { path: string },
  body: (opened: OpenedClientRequest<T>, tx: Transaction) => Promise<R>,
  options: ClientAuthOptions = {},
): Promise<R> {
  return openSigned(
    ctx,
    (tx, now) => authenticateClient(ctx, tx, request.signed, type, method, now, options),
    body,
  );
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
export async function authenticateHandle<T extends TbsWithHeader>(
  ctx: AuthContext,
  tx: Database,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  method: { path: string },
  now: number,
): Promise<HandleRequest<T>> {
  const request = await authenticateSignedRequest(
    requestPolicy(ctx, now),
    { signed, type, method },
    async (_tbs, header) => {
      checkSenderKind(header, "handleHash");
      if (header.sender?.$case !== "handleHash")
        throw malformed("tbs.header.sender", "must be a handle hash");
      const handleHash = parseHandleHash(header.sender.value, "tbs.header.sender.handle_hash");
      const handle = await findLiveHandle(tx, handleHash, now);
      if (!handle) throw new NotFoundError("no such handle, or it expired");
      return {
        signer: "handle",
        key: handle.verifyingKey,
        replayScope: replayScope("handleHash", handleHash),
        handle,
      };
    },
  );
  await request.claim(tx);
  return { tbs: request.tbs, handle: request.signer.handle };
}

/** A handle request opened by {@link asHandle}: the authenticated request and its clock reading. */
export interface OpenedHandleRequest<T> extends HandleRequest<T> {
  /** The handler's clock reading (ms), taken once before the transaction. */
  now: number;
}

/**
 * The opening of every handle-signed RPC: {@link asClient} for requests signed with a handle's
 * verifying key (authenticateHandle: an unknown or expired handle is NOT_FOUND).
 */
export function asHandle<T extends TbsWithHeader, R>(
  ctx: AuthContext,
  request: { signed: common.Signed | undefined },
  type: MessageDecoder<T>,
  method: { path: string },
  body: (opened: OpenedHandleRequest<T>, tx: Transaction) => Promise<R>,
): Promise<R> {
  return openSigned(ctx, (tx, now) => authenticateHandle(ctx, tx, request.signed, type, method, now), body);
}

/** Reads the clock once, then authenticates and runs `body` in one transaction. */
function openSigned<O, R>(
  ctx: AuthContext,
  authenticate: (tx: Transaction, now: number) => Promise<O>,
  body: (opened: O & { now: number }, tx: Transaction) => Promise<R>,
): Promise<R> {
  const now = ctx.now();
  return transaction(ctx.db, async (tx) => body({ ...(await authenticate(tx, now)), now }, tx));
}
