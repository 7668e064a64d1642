// phoenix.admin.v1.QueueAdminService, served on the QS's admin listener only: GetQueueStats,
// counts and fixed-bucket histograms — nothing per queue, no queue id. Audited by the runtime's
// operator call (log line + admin_audit row in the QS database).
import type { VerifyingKey } from "@phoenix/crypto";
import { queueAdmin } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import { asOperator, type OperatorCallContext } from "@phoenix/runtime/module";
import { sql } from "drizzle-orm";
import { type QueueContext, requestPolicy } from "../api/context.js";

/** Upper bounds of the depth buckets (messages); the last bucket takes everything above. */
export const DEPTH_BUCKETS = [0, 1, 10, 100, 1000, 10_000] as const;
/** Upper bounds of the oldest-message age buckets (seconds): an hour, a day, a week, 30 days. */
export const AGE_BUCKETS = [3600, 86_400, 7 * 86_400, 30 * 86_400] as const;
const EVERYTHING = 18_446_744_073_709_551_615n;

/** What the QS admin RPCs need. */
export interface QueueAdminContext {
  ctx: QueueContext;
  operatorKeys: ReadonlyMap<string, VerifyingKey>;
  /** QS_MESSAGE_EXPIRY: a message's age is this minus the time its expiry is away. */
  messageExpiryMs: number;
}

function callContext({ ctx, operatorKeys }: QueueAdminContext): OperatorCallContext {
  return {
    db: ctx.db,
    log: ctx.logger,
    now: () => ctx.now(),
    operatorKeys,
    requestPolicy: (now) => ({ ...requestPolicy(ctx), now: () => now }),
  };
}

/** Counts per bucket from a row of `b0`, `b1`, … columns. */
function histogram(bounds: readonly number[], row: Record<string, unknown>): queueAdmin.HistogramBucket[] {
  return [...bounds.map((b) => BigInt(b)), EVERYTHING].map((upperBound, i) => ({
    upperBound,
    count: BigInt(Number(row[`b${i}`] ?? 0)),
  }));
}

/** `count(*) FILTER (…) AS bN` for each bucket of `value` (SQL fragment). */
function bucketColumns(value: string, bounds: readonly number[]): string {
  const columns = bounds.map((bound, i) => {
    const lower = i === 0 ? "" : `${value} > ${bounds[i - 1]} AND `;
    return `count(*) FILTER (WHERE ${lower}${value} <= ${bound}) AS b${i}`;
  });
  columns.push(`count(*) FILTER (WHERE ${value} > ${bounds[bounds.length - 1]}) AS b${bounds.length}`);
  return columns.join(", ");
}

/** The counts of GetQueueStats, in two statements (no per-queue row leaves the database). */
export async function queueStats(
  db: Database,
  now: Date,
  messageExpiryMs: number,
): Promise<queueAdmin.GetQueueStatsResponse> {
  const depth = await db.execute(
    sql.raw(
      `SELECT count(*) AS queues, coalesce(sum(queue_depth), 0) AS messages, ${bucketColumns("queue_depth", DEPTH_BUCKETS)} FROM qs_clients`,
    ),
  );
  // A message's age from its expiry: enqueued at expires_at - QS_MESSAGE_EXPIRY (expiries are
  // rounded up to the QS's coarse step, so ages are as coarse). Never-expiring ones are skipped.
  const age = await db.execute(sql`
    WITH oldest AS (
      SELECT min(expires_at) AS expires_at FROM qs_messages WHERE expires_at IS NOT NULL GROUP BY client_id
    ), ages AS (
      SELECT greatest(0, extract(epoch FROM (${now.toISOString()}::timestamptz - expires_at)) + ${messageExpiryMs / 1000}) AS age FROM oldest
    )
    SELECT ${sql.raw(bucketColumns("age", AGE_BUCKETS))} FROM ages`);
  const depthRow = rowsOf(depth)[0] ?? {};
  const ageRow = rowsOf(age)[0] ?? {};
  return {
    queues: BigInt(Number(depthRow.queues ?? 0)),
    messages: BigInt(Number(depthRow.messages ?? 0)),
    depth: histogram(DEPTH_BUCKETS, depthRow),
    oldestMessageAgeSeconds: histogram(AGE_BUCKETS, ageRow),
  };
}

/** The rows of `db.execute` on either driver (node-postgres and PGlite answer alike: `.rows`). */
function rowsOf(result: unknown): Record<string, unknown>[] {
  return ((result as { rows?: Record<string, unknown>[] }).rows ?? []) as Record<string, unknown>[];
}

/** phoenix.admin.v1.QueueAdminService. */
export function queueAdminRoutes(admin: QueueAdminContext): ServiceRegistration {
  return defineService(queueAdmin.QueueAdminServiceService, {
    getQueueStats: unary((request) =>
      asOperator(
        callContext(admin),
        request,
        queueAdmin.GetQueueStatsTbs,
        queueAdmin.QueueAdminServiceService.getQueueStats,
        () => "queues",
        ({ now }, db) => queueStats(db, new Date(now), admin.messageExpiryMs),
      ),
    ),
  });
}
