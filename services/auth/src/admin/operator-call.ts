// The opening of every AS admin RPC: the runtime's operator call (authentication, the call's
// transaction, the audit line and admin_audit row) with the AS's request policy.
import type { VerifyingKey } from "@phoenix/crypto";
import type { common, MessageDecoder } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import {
  type OperatorCallContext,
  type OperatorRequest,
  type OperatorTbs,
  asOperator as runOperatorCall,
} from "@phoenix/runtime/module";
import { requestPolicy } from "../api/authenticate.js";
import type { AuthContext } from "../context.js";

export type { OperatorRequest };

/** The AS context plus the operator keys of ADMIN_OPERATOR_KEYS. */
export interface AdminContext extends AuthContext {
  readonly operatorKeys: ReadonlyMap<string, VerifyingKey>;
}

/** The AS as the runtime's operator call sees it. */
function operatorCallContext(ctx: AdminContext): OperatorCallContext {
  return {
    db: ctx.db,
    log: ctx.log,
    now: () => ctx.now(),
    operatorKeys: ctx.operatorKeys,
    requestPolicy: (now) => requestPolicy(ctx, now),
  };
}

/** The runtime's `asOperator` on the AS (see there): audited, in one transaction by default. */
export function asOperator<T extends OperatorTbs, R>(
  ctx: AdminContext,
  request: { signed: common.Signed | undefined },
  type: MessageDecoder<T>,
  method: { path: string; originalName?: string },
  describe: (tbs: T) => string,
  body: (opened: OperatorRequest<T>, db: Database) => Promise<R>,
  options: { transactional?: boolean } = {},
): Promise<R> {
  return runOperatorCall(operatorCallContext(ctx), request, type, method, describe, body, options);
}
