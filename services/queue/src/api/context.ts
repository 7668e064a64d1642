import type { common, MessageDecoder } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import type { AddressMatcher, NamedRateLimit } from "@phoenix/runtime/rate-limit";
import { claimSeenRequest } from "@phoenix/runtime/replay";
import {
  authenticateSignedRequest,
  type RequestWindow,
  type SignedRequestPolicy,
  type TbsWithHeader,
} from "@phoenix/runtime/signed-request";
import type { CiphersuiteImpl } from "ts-mls";
import { keysUnavailable } from "../domain/errors.js";
import type { KeyRing } from "../domain/key-ring.js";
import { activityMonth } from "../domain/limits.js";
import type { QueueConfigOpener } from "../domain/queue-config-opener.js";
import type { RatchetUpdatePolicy } from "../domain/queue-ratchet.js";
import { senderId, unknownSender } from "../domain/signed-request.js";
import { HashPurpose, type StorageKeys } from "../domain/storage-keys.js";
import type { WebhookAddressPolicy } from "../domain/webhook-address.js";
import type { ListenerHub } from "../live/listener-hub.js";
import { type ClientRow, findClient, touchClient } from "../store/clients.js";
import { findUser, type UserRow } from "../store/users.js";

/** Configurable limits of the QS. */
export interface QsLimits {
  maxClientsPerUser: number;
  maxDequeue: number;
  maxBlocklist: number;
  /** Messages a client queue holds before fan-outs to it are dropped (QS_MAX_QUEUE_DEPTH). */
  maxQueueDepth: number;
  /** An AddPackage is handed out at most this long after its publication (QS_ADD_PACKAGE_LIFETIME). */
  addPackageLifetimeMs: number;
}

/** The per-replica rate limits of the unauthenticated RPCs. */
export interface QsRateLimits {
  fetchAddPackagesPerToken: NamedRateLimit;
  fetchAddPackagesPerCaller: NamedRateLimit;
  createUserPerCaller: NamedRateLimit;
}

/** Everything the RPC handlers share. */
export interface QueueContext {
  db: Database;
  domain: string;
  storage: StorageKeys;
  /** The current key ring (replaced on rotation). */
  keys(): KeyRing | undefined;
  replayWindow: RequestWindow;
  limits: QsLimits;
  rateLimits: QsRateLimits;
  /** Peers (the edge gateways) whose `x-forwarded-for` names the real caller. */
  trustedProxies: AddressMatcher;
  ratchetPolicy: RatchetUpdatePolicy;
  /** A replaced client auth key keeps verifying sealed queue configs this long (0: not at all). */
  authKeyGraceMs: number;
  /** Live Listen streams of this process and their wake-ups. */
  listeners: ListenerHub;
  /** Which webhook push URLs may be set (IP literals and loopback names are checked then). */
  webhookPolicy: WebhookAddressPolicy;
  /** Opens sealed queue configs (cached by their bytes). */
  opener: QueueConfigOpener;
  /** The MLS ciphersuite (node:crypto provider) that verifies KeyPackages. */
  ciphersuite(): Promise<CiphersuiteImpl>;
  logger: Logger;
  now(): number;
}

/** The key ring, or UNAVAILABLE before the keys are loaded. */
export function keyRing(ctx: QueueContext): KeyRing {
  const ring = ctx.keys();
  if (ring === undefined || ring.currentConfigKey === undefined || ring.currentSigningKey === undefined) {
    throw keysUnavailable();
  }
  return ring;
}

/** How the QS authenticates signed requests: the runtime's authenticator with the QS replay markers. */
export function requestPolicy(ctx: QueueContext): SignedRequestPolicy<Database> {
  return {
    window: ctx.replayWindow,
    now: () => ctx.now(),
    // Markers are the QS storage hash of sender and request id (the seen-request purpose), so the
    // table names no QS record and a marker is useless to any other service.
    replay: {
      claim: (tx, parts, expiresAt) =>
        claimSeenRequest(tx, ctx.storage.hash(HashPurpose.SeenRequest, ...parts), expiresAt),
    },
  };
}

/** A verified request and the claim of its id (run the claim in the request's transaction). */
export interface VerifiedRequest<T> {
  tbs: T;
  header: common.RequestHeader;
  claim: RequestClaim;
}

/** Claims a verified request's id; call it inside the transaction that does the request's work. */
export type RequestClaim = (tx: Database) => Promise<void>;

/**
 * Authenticates a request signed with a QS user record key and returns it with the user row and
 * its claim (call it in the request's transaction: replays are refused there).
 */
export async function authenticateUser<T extends TbsWithHeader>(
  ctx: QueueContext,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
): Promise<VerifiedRequest<T> & { user: UserRow }> {
  const request = await authenticateSignedRequest(
    requestPolicy(ctx),
    { signed, type, method: label },
    async (_tbs, header) => {
      const userId = senderId(header, "qsUserId");
      const user = await findUser(ctx.db, userId);
      if (user === undefined) throw unknownSender("the user record");
      return { signer: "the user record", key: user.authKey, replayScope: [userId], user };
    },
  );
  return { tbs: request.tbs, header: request.header, user: request.signer.user, claim: request.claim };
}

/**
 * Authenticates a request signed with a QS client record key, returns it with the client row and
 * its claim (call it in the request's transaction), and refreshes the client's activity month.
 */
export async function authenticateClient<T extends TbsWithHeader>(
  ctx: QueueContext,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  field = "signed",
): Promise<VerifiedRequest<T> & { client: ClientRow }> {
  const request = await authenticateSignedRequest(
    requestPolicy(ctx),
    { signed, type, method: label, field },
    async (_tbs, header) => {
      const clientId = senderId(header, "qsClientId");
      const client = await findClient(ctx.db, clientId);
      if (client === undefined) throw unknownSender("the client record");
      return { signer: "the client record", key: client.authKey, replayScope: [clientId], client };
    },
  );
  const { client } = request.signer;
  const month = activityMonth(ctx.now());
  if (client.lastActiveAt.getTime() !== month.getTime()) await touchClient(ctx.db, client.clientId, month);
  return { tbs: request.tbs, header: request.header, client, claim: request.claim };
}
