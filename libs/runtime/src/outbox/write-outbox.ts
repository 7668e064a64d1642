import { randomUUID } from "node:crypto";
import { type PayloadSealer, sealMessage } from "@phoenix/crypto";
import { type SQL, sql } from "drizzle-orm";
import { assertSubject } from "../bus/subject.js";
import type { Database } from "../db/types.js";
import { seenRequests } from "../replay/schema.js";
import { outbox } from "./schema.js";

/** One message to publish once the caller's transaction commits. */
export interface OutboxMessage {
  /** A concrete bus subject (no wildcards). Messages on one subject are published in commit order. */
  subject: string;
  payload: Uint8Array;
  headers?: Record<string, string>;
  /** Dedupe id on the bus; default a random UUID. Give your own to make a retried write idempotent. */
  id?: string;
}

/** A message that can never be published; refused before it could block its subject in the relay. */
export class OutboxMessageError extends Error {
  override readonly name = "OutboxMessageError";
}

/**
 * Writes messages to the outbox through `tx`, in the given order and in one statement. Call it
 * inside the transaction that changes the state the messages describe: a rollback discards them,
 * a commit makes them the relay's to publish. Returns the dedupe ids. Poke the relay after commit.
 *
 * Body and headers are sealed under `sealer` (bound to the row's id and subject): published rows
 * are deleted, but deleted rows survive in the database files and WAL until overwritten, so a
 * copy of them must not yield the fan-outs. There is no plaintext path; the relay opens the rows
 * with a sealer of the same secret.
 */
export async function writeOutbox<TSchema extends Record<string, unknown>>(
  tx: Database<TSchema>,
  messages: readonly OutboxMessage[],
  sealer: PayloadSealer,
): Promise<string[]> {
  if (messages.length === 0) return [];
  const rows = sealedRows(messages, sealer);
  // One multi-row INSERT: identity values follow the VALUES order, so `seq` keeps the caller's order.
  await tx.insert(outbox).values(rows);
  return rows.map((row) => row.id);
}

/** A request id's claim: its marker in the replay store and how long it is kept. */
export interface SeenRequestClaim {
  marker: Uint8Array;
  expiresAt: Date;
}

/**
 * A write of the caller's own that must happen only together with a claim: given the name of the
 * claim's CTE, a data-modifying statement that changes nothing unless `EXISTS (SELECT 1 FROM
 * <claimed>)` — e.g. the DS's group state update.
 */
export type ClaimedWrite = (claimed: SQL) => SQL;

/**
 * Claims a request id and writes its messages to the outbox — and `alsoWrite`, when given — in
 * ONE statement: when the id was claimed before (a replay) nothing is written and the result is
 * false. Without a transaction around it a statement is atomic by itself (the DS's SendMessage:
 * one round trip instead of BEGIN, claim, outbox, COMMIT); inside one (a locked read first), it is
 * the request's one write. Poke the relay after the commit.
 */
export async function claimAndWriteOutbox<TSchema extends Record<string, unknown>>(
  db: Database<TSchema>,
  claim: SeenRequestClaim,
  messages: readonly OutboxMessage[],
  sealer: PayloadSealer,
  alsoWrite?: ClaimedWrite,
): Promise<boolean> {
  const rows = sealedRows(messages, sealer);
  const name = sql.raw("claimed");
  const ctes: SQL[] = [
    sql`${name} AS (
      INSERT INTO ${seenRequests} (marker, expires_at) VALUES (${claim.marker}, ${claim.expiresAt})
      ON CONFLICT DO NOTHING RETURNING 1 AS one)`,
  ];
  if (alsoWrite !== undefined) ctes.push(sql`also_written AS (${alsoWrite(name)})`);
  if (rows.length > 0) {
    // `ord` keeps the caller's order in `seq` (identity values follow the SELECT's ORDER BY); the
    // join with the claim inserts nothing when it found the id taken.
    const values = sql.join(
      rows.map((row, i) => sql`(${i}::int, ${row.id}::text, ${row.subject}::text, ${row.payload}::bytea)`),
      sql`, `,
    );
    ctes.push(sql`outbox_written AS (
      INSERT INTO ${outbox} (id, subject, payload, headers, sealed)
      SELECT v.id, v.subject, v.payload, '{}'::jsonb, true
      FROM (VALUES ${values}) AS v(ord, id, subject, payload) CROSS JOIN ${name}
      ORDER BY v.ord
      RETURNING 1)`);
  }
  const statement = sql`WITH ${sql.join(ctes, sql`, `)} SELECT count(*)::int AS n FROM ${name}`;
  // `execute` returns `{ rows }` on both drivers (node-postgres and PGlite).
  const { rows: counted } = (await db.execute(statement)) as { rows: { n?: unknown }[] };
  return Number(counted[0]?.n ?? 0) === 1;
}

/** Checks and seals messages into outbox rows (their headers sealed inside the payload). */
function sealedRows(messages: readonly OutboxMessage[], sealer: PayloadSealer) {
  return messages.map((message) => {
    try {
      assertSubject(message.subject); // the bus's own rule: concrete, no wildcards
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new OutboxMessageError(`outbox message refused: ${reason}`, { cause: error });
    }
    if (!(message.payload instanceof Uint8Array)) {
      throw new OutboxMessageError(`outbox payload for ${message.subject} must be a Uint8Array`);
    }
    if (message.id !== undefined && message.id.length === 0) {
      throw new OutboxMessageError(`outbox id for ${message.subject} must not be empty`);
    }
    const id = message.id ?? randomUUID();
    return {
      id,
      subject: message.subject,
      payload: sealMessage(sealer, id, message.subject, {
        data: message.payload,
        headers: message.headers ?? {},
      }),
      headers: {},
      sealed: true as const,
    };
  });
}
