// The opening of every admin RPC: operator authentication, the call's transaction, and the audit
// log entry (pino line + admin_audit row) of every call, accepted or refused.

import { status } from "@grpc/grpc-js";
import type { VerifyingKey } from "@phoenix/crypto";
import type { common, MessageDecoder } from "@phoenix/proto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { RpcError } from "@phoenix/runtime/errors";
import { authenticateOperator, type OperatorTbs } from "@phoenix/runtime/module";
import { requestPolicy } from "../api/authenticate.js";
import type { AuthContext } from "../context.js";
import { type AuditRow, insertAudit } from "../store/admin.js";

/** The AS context plus the operator keys of ADMIN_OPERATOR_KEYS. */
export interface AdminContext extends AuthContext {
  readonly operatorKeys: ReadonlyMap<string, VerifyingKey>;
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
function auditLine(ctx: AuthContext, row: AuditRow): void {
  ctx.log.info(
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
 * claim committed). A refused call
 * is audited in a transaction of its own, then its error is rethrown. `describe` names the
 * target from the tbs (identifiers only: never secrets, never content).
 */
export async function asOperator<T extends OperatorTbs, R>(
  ctx: AdminContext,
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
  let accepted: AuditRow | undefined;
  try {
    const result = await transaction(ctx.db, async (tx) => {
      entry = undefined;
      const opened = await authenticateOperator(requestPolicy(ctx, now), ctx.operatorKeys, {
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
      await insertAudit(tx, accepted);
      return { deferred: false as const, value };
    });
    if (result.deferred) {
      // Work with transactions of its own (the keyring's): run once the claim committed.
      const { opened } = result;
      const value = await body({ tbs: opened.tbs, operator: opened.signer.operator, now }, ctx.db);
      accepted = { ...(entry as AuditEntry), at: new Date(now), method: name, outcome: "ok" };
      await insertAudit(ctx.db, accepted);
      auditLine(ctx, accepted);
      return value;
    }
    if (accepted) auditLine(ctx, accepted);
    return result.value;
  } catch (error) {
    const refused: AuditRow = {
      ...(entry ?? claimed(request.signed, type, describe)),
      at: new Date(now),
      method: name,
      outcome: outcomeOf(error),
    };
    auditLine(ctx, refused);
    await insertAudit(ctx.db, refused).catch((auditError: unknown) =>
      ctx.log.error({ err: auditError }, "writing the admin audit row failed"),
    );
    throw error;
  }
}
