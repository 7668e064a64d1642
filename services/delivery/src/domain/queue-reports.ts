import { bytesEqual, sha256, utf8 } from "@phoenix/crypto";

/**
 * Queue-deleted reports waiting in a group row until the group's next write folds them into its
 * encrypted state. The consumer that stores them has no EAR key, so each carries in the clear only
 * what bounding needs: a tag for dedupe and the day it lapses; the reported queue reference
 * itself is sealed to the group's report key.
 *
 * Policy (docs/delivery-service.md): one report per reported reference (a repeat is dropped), at
 * most `max` per group (more are dropped), and a report not folded within `ttlMs` is dropped.
 * Dropping is safe: the QS reports a missing queue again with every fan-out that reaches it, so
 * a genuine report comes back after the next write cleared the row.
 */
export interface QueueReportRecord {
  /** 16 bytes: {@link queueReportTag} of the reported reference. */
  tag: Uint8Array;
  /** Day number (days since 1970-01-01 UTC) after which the report is dropped; coarse on purpose. */
  expiresDay: number;
  /** The HPKE ciphertext of the QsReference, sealed to the group's report key. */
  sealed: Uint8Array;
}

/** How many reports a group keeps and for how long. */
export interface QueueReportPolicy {
  max: number;
  ttlMs: number;
}

const DAY_MS = 86_400_000;
const TAG_LENGTH = 16;
const HEADER_LENGTH = TAG_LENGTH + 4;
const TAG_DOMAIN = utf8("phoenix ds queue report tag");

/** The day number of a time in ms. */
export function dayOf(timeMs: number): number {
  return Math.floor(timeMs / DAY_MS);
}

/**
 * The dedupe tag of a report: a hash of the group and the encoded reference. It names the
 * reference only to someone who already holds it (the group's members and the reporting QS).
 */
export function queueReportTag(groupUuid: Uint8Array, encodedReference: Uint8Array): Uint8Array {
  return sha256(TAG_DOMAIN, groupUuid, encodedReference).slice(0, TAG_LENGTH);
}

/** When a report received now lapses: the day after now + ttl begins. */
export function expiryDay(nowMs: number, ttlMs: number): number {
  return dayOf(nowMs + ttlMs);
}

/** Whether a report is still live on day `today`. */
export function isLive(record: QueueReportRecord, today: number): boolean {
  return record.expiresDay >= today;
}

/** What {@link admitReport} did with a new report. */
export type AdmitOutcome = "stored" | "duplicate" | "full";

/**
 * Adds a report to the live ones: lapsed reports are dropped first, a report whose tag is there
 * already is a duplicate, and a group holding `max` reports takes no more.
 */
export function admitReport(
  existing: readonly QueueReportRecord[],
  report: QueueReportRecord,
  max: number,
  today: number,
): { records: QueueReportRecord[]; outcome: AdmitOutcome } {
  const records = existing.filter((r) => isLive(r, today));
  if (records.some((r) => bytesEqual(r.tag, report.tag))) return { records, outcome: "duplicate" };
  if (records.length >= max) return { records, outcome: "full" };
  return { records: [...records, report], outcome: "stored" };
}

/** The column encoding: per record a u32 length, then tag (16), expiry day (u32), sealed bytes. */
export function encodeQueueReports(records: readonly QueueReportRecord[]): Uint8Array {
  const total = records.reduce((n, r) => n + 4 + HEADER_LENGTH + r.sealed.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const r of records) {
    if (r.tag.length !== TAG_LENGTH) throw new RangeError("a queue report tag is 16 bytes");
    view.setUint32(offset, HEADER_LENGTH + r.sealed.length);
    out.set(r.tag, offset + 4);
    view.setUint32(offset + 4 + TAG_LENGTH, r.expiresDay);
    out.set(r.sealed, offset + 4 + HEADER_LENGTH);
    offset += 4 + HEADER_LENGTH + r.sealed.length;
  }
  return out;
}

/** Decodes the column; a truncated or malformed tail is ignored (it can only be dropped). */
export function decodeQueueReports(bytes: Uint8Array): QueueReportRecord[] {
  const out: QueueReportRecord[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = view.getUint32(offset);
    if (length < HEADER_LENGTH || offset + 4 + length > bytes.length) break;
    const body = offset + 4;
    out.push({
      tag: bytes.slice(body, body + TAG_LENGTH),
      expiresDay: view.getUint32(body + TAG_LENGTH),
      sealed: bytes.slice(body + HEADER_LENGTH, body + length),
    });
    offset = body + length;
  }
  return out;
}
