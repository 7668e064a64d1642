import type { common, MessageDecoder } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import type { AddressMatcher, NamedRateLimit } from "@phoenix/runtime/rate-limit";
import { openSignedRequest } from "@phoenix/runtime/signed-request";
import type { CiphersuiteImpl } from "ts-mls";
import { keysUnavailable } from "../domain/errors.js";
import type { KeyRing } from "../domain/key-ring.js";
import { activityMonth } from "../domain/limits.js";
import type { QueueConfigOpener } from "../domain/queue-config-opener.js";
import type { RatchetUpdatePolicy } from "../domain/queue-ratchet.js";
import { type OpenedRequest, type ReplayWindow, senderId, verifySigned } from "../domain/signed-request.js";
import type { StorageKeys } from "../domain/storage-keys.js";
import type { WebhookAddressPolicy } from "../domain/webhook-address.js";
import type { ListenerHub } from "../live/listener-hub.js";
import { type ClientRow, findClient, findUser, touchClient, type UserRow } from "../store/records-store.js";
import { type RequestClaim, requestClaim } from "./replay.js";

/** Configurable limits of the QS. */
export interface QsLimits {
  maxClientsPerUser: number;
  maxDequeue: number;
  maxBlocklist: number;
  /** Messages a client queue holds before fan-outs to it are dropped (QS_MAX_QUEUE_DEPTH). */
  maxQueueDepth: number;
}

/** The per-replica rate limits of the unauthenticated RPCs. */
export interface QsRateLimits {
  fetchAddPackagesPerToken: NamedRateLimit;
  fetchAddPackagesPerCaller: NamedRateLimit;
  createUserPerCaller: NamedRateLimit;
}

/** Everything the RPC handlers share. */
export interface QsDeps {
  db: Database;
  domain: string;
  storage: StorageKeys;
  /** The current key ring (replaced on rotation). */
  keys(): KeyRing | undefined;
  replayWindow: ReplayWindow;
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
export function keyRing(deps: QsDeps): KeyRing {
  const ring = deps.keys();
  if (ring === undefined || ring.currentConfigKey === undefined || ring.currentSigningKey === undefined) {
    throw keysUnavailable();
  }
  return ring;
}

/**
 * Opens a request signed with a QS user record key and returns it with the user row and its
 * claim (call it in the request's transaction: replays are refused there).
 */
export async function authenticateUser<T extends { header: common.RequestHeader | undefined }>(
  deps: QsDeps,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
): Promise<OpenedRequest<T> & { user: UserRow; claim: RequestClaim }> {
  const now = deps.now();
  const opened = openSignedRequest(signed, type, { label, now, window: deps.replayWindow });
  const userId = senderId(opened.header, "qsUserId");
  const user = await findUser(deps.db, userId);
  verifySigned(opened, user?.authKey, "the user record");
  return { ...opened, user: user as UserRow, claim: requestClaim(deps, opened, userId) };
}

/**
 * Opens a request signed with a QS client record key, returns it with the client row and its
 * claim (call it in the request's transaction), and refreshes the client's activity month.
 */
export async function authenticateClient<T extends { header: common.RequestHeader | undefined }>(
  deps: QsDeps,
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  field = "signed",
): Promise<OpenedRequest<T> & { client: ClientRow; claim: RequestClaim }> {
  const now = deps.now();
  const opened = openSignedRequest(signed, type, { label, now, window: deps.replayWindow, field });
  const clientId = senderId(opened.header, "qsClientId");
  const client = await findClient(deps.db, clientId);
  verifySigned(opened, client?.authKey, "the client record");
  const row = client as ClientRow;
  const month = activityMonth(now);
  if (row.lastActiveAt.getTime() !== month.getTime()) await touchClient(deps.db, clientId, month);
  return { ...opened, client: row, claim: requestClaim(deps, opened, clientId) };
}
