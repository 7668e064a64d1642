// The opening of every admin RPC of every service (AS, federation gateway, QS): operator
// authentication, the call's transaction, and the audit log entry (log line + admin_audit row)
// of every call, accepted or refused.
import { status } from "@grpc/grpc-js";
import type { VerifyingKey } from "@phoenix/crypto";
import type { common, MessageDecoder } from "@phoenix/proto";
import { type AdminAuditRow, insertAdminAudit } from "../db/admin-tables.js";
import { transaction } from "../db/transaction.js";
import type { Database } from "../db/types.js";
import { RpcError } from "../errors/rpc-errors.js";
import type { Logger } from "../log/create-logger.js";
import type { SignedRequestPolicy } from "../signed-request/authenticator.js";
import { authenticateOperator, type OperatorTbs } from "./admin-listener.js";

/** What an admin call needs of its service. */
export interface OperatorCallContext {
  /** The service database: request-id claims and the admin_audit table. */
  readonly db: Database;
  /** Where the audit lines go. */
  readonly log: Logger;
  /** The service clock (ms since the epoch). */
  now(): number;
  /** ADMIN_OPERATOR_KEYS, parsed. */
  readonly operatorKeys: ReadonlyMap<string, VerifyingKey>;
  /** The service's signed-request policy (window, replay claims, refusal wording) at `now`. */
  requestPolicy(now: number): SignedRequestPolicy<Database>;
}

/** An authenticated operator request. */
export interface OperatorRequest<T> {
  tbs: T;
  /** The operator's name in ADMIN_OPERATOR_KEYS. */
  operator: string;
  /** The handler's clock reading (ms). */
  now: number;
}

/** What an audit entry says about a call. */
interface AuditEntry {
  operator: string;
  authenticated: boolean;
  target: string;
}

const STATUS_NAMES = new Map<number, string>(
  Object.entries(status)
    .filter((entry): entry is [string, number] => typeof entry[1] === "number")
    .map(([name, code]) => [code, name]),
);

/** The gRPC status name a handler's error becomes (INTERNAL for anything not an RpcError). */
function outcomeOf(error: unknown): string {
  return error instanceof RpcError ? (STATUS_NAMES.get(error.code) ?? String(error.code)) : "INTERNAL";
}

/**
 * What a refused request claims, read without trusting it (its signature may not verify): the
 * operator name and the target, cut short; `?` when the tbs does not decode.
 */
function claimed<T extends OperatorTbs>(
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  describe: (tbs: T) => string,
): AuditEntry {
  try {
    const tbs = type.decode(signed?.tbs ?? new Uint8Array());
    return { operator: tbs.operator.slice(0, 64), authenticated: false, target: safeDescribe(describe, tbs) };
  } catch {
    return { operator: "?", authenticated: false, target: "?" };
  }
}

function safeDescribe<T>(describe: (tbs: T) => string, tbs: T): string {
  try {
    return describe(tbs).slice(0, 200);
  } catch {
    return "(malformed)";
  }
}

/**
 * The audit line: the operator's live view (shipped with the service's logs); the admin_audit row
 * survives log rotation. Neither holds message content or key material: targets are identifiers.
 */
function auditLine(log: Logger, row: AdminAuditRow): void {
  log.info(
    {
      audit: true,
      operator: row.operator,
      authenticated: row.authenticated,
      method: row.method,
      target: row.target,
      outcome: row.outcome,
    },
    "admin call",
  );
}

/**
 * Runs an admin RPC: authenticates the operator's signed request (authenticateOperator: unknown
 * operator, bad signature, stale or replayed request are UNAUTHENTICATED) and runs `body` in one
 * transaction with the request id's claim and the audit row of the accepted call (with
 * `transactional: false`, for work that opens transactions of its own, `body` runs after the
 * claim committed). A refused call is audited in a transaction of its own, then its error is
 * rethrown. `describe` names the target from the tbs (identifiers only: never secrets, never
 * content).
 */
export async function asOperator<T extends OperatorTbs, R>(
  ctx: OperatorCallContext,
  request: { signed: common.Signed | undefined },
  type: MessageDecoder<T>,
  method: { path: string; originalName?: string },
  describe: (tbs: T) => string,
  body: (opened: OperatorRequest<T>, db: Database) => Promise<R>,
  options: { transactional?: boolean } = {},
): Promise<R> {
  const now = ctx.now();
  const name = method.path.slice(method.path.lastIndexOf("/") + 1);
  let entry: AuditEntry | undefined;
  let accepted: AdminAuditRow | undefined;
  try {
    const result = await transaction(ctx.db, async (tx) => {
      entry = undefined;
      const opened = await authenticateOperator(ctx.requestPolicy(now), ctx.operatorKeys, {
        signed: request.signed,
        type,
        method,
      });
      entry = {
        operator: opened.signer.operator,
        authenticated: true,
        target: safeDescribe(describe, opened.tbs),
      };
      await opened.claim(tx);
      if (options.transactional === false) return { deferred: true as const, opened };
      const value = await body({ tbs: opened.tbs, operator: opened.signer.operator, now }, tx);
      // In the call's transaction: an accepted call that committed always has its row.
      accepted = { ...entry, at: new Date(now), method: name, outcome: "ok" };
      await insertAdminAudit(tx, accepted);
      return { deferred: false as const, value };
    });
    if (result.deferred) {
      // Work with transactions of its own: run once the claim committed.
      const { opened } = result;
      const value = await body({ tbs: opened.tbs, operator: opened.signer.operator, now }, ctx.db);
      accepted = { ...(entry as AuditEntry), at: new Date(now), method: name, outcome: "ok" };
      await insertAdminAudit(ctx.db, accepted);
      auditLine(ctx.log, accepted);
      return value;
    }
    if (accepted) auditLine(ctx.log, accepted);
    return result.value;
  } catch (error) {
    const refused: AdminAuditRow = {
      ...(entry ?? claimed(request.signed, type, describe)),
      at: new Date(now),
      method: name,
      outcome: outcomeOf(error),
    };
    auditLine(ctx.log, refused);
    await insertAdminAudit(ctx.db, refused).catch((auditError: unknown) =>
      ctx.log.error({ err: auditError }, "writing the admin audit row failed"),
    );
    throw error;
  }
}
