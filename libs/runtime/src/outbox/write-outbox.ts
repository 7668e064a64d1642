import { randomUUID } from "node:crypto";
import { type PayloadSealer, sealMessage } from "@phoenix/crypto";
import { assertSubject } from "../bus/subject.js";
import type { Database } from "../db/types.js";
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
  const rows = messages.map((message) => {
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
      sealed: true,
    };
  });
  // One multi-row INSERT: identity values follow the VALUES order, so `seq` keeps the caller's order.
  await tx.insert(outbox).values(rows);
  return rows.map((row) => row.id);
}
