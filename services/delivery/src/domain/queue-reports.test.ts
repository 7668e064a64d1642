import { describe, expect, it } from "vitest";
import {
  admitReport,
  dayOf,
  decodeQueueReports,
  encodeQueueReports,
  expiryDay,
  type QueueReportRecord,
  queueReportTag,
} from "./queue-reports.js";

const DAY = 86_400_000;
const group = new Uint8Array(16).fill(9);
const record = (ref: number, expiresDay = 100): QueueReportRecord => ({
  tag: queueReportTag(group, new Uint8Array([ref])),
  expiresDay,
  sealed: new Uint8Array([ref, ref, ref]),
});

describe("queue-deleted report bounding", () => {
  it("round-trips the column encoding and ignores a truncated tail", () => {
    const records = [record(1), record(2, 7)];
    const bytes = encodeQueueReports(records);
    expect(decodeQueueReports(bytes)).toEqual(records);
    expect(decodeQueueReports(bytes.slice(0, bytes.length - 1))).toEqual([records[0]]);
    expect(decodeQueueReports(new Uint8Array())).toEqual([]);
  });

  it("tags a reference per group: the same reference twice is one report", () => {
    expect(queueReportTag(group, new Uint8Array([1]))).toEqual(queueReportTag(group, new Uint8Array([1])));
    expect(queueReportTag(group, new Uint8Array([1]))).not.toEqual(
      queueReportTag(group, new Uint8Array([2])),
    );
    expect(queueReportTag(new Uint8Array(16), new Uint8Array([1]))).not.toEqual(
      queueReportTag(group, new Uint8Array([1])),
    );
    const first = admitReport([], record(1), 10, 50);
    const again = admitReport(first.records, { ...record(1), sealed: new Uint8Array([7]) }, 10, 50);
    expect(again.outcome).toBe("duplicate");
    expect(again.records).toEqual([record(1)]);
  });

  it("takes no report beyond the cap", () => {
    let records: QueueReportRecord[] = [];
    for (let i = 0; i < 3; i++) records = admitReport(records, record(i), 3, 50).records;
    const over = admitReport(records, record(3), 3, 50);
    expect(over.outcome).toBe("full");
    expect(over.records).toHaveLength(3);
  });

  it("drops lapsed reports, which also frees room under the cap", () => {
    const now = 1_000 * DAY + 5_000;
    const ttl = 7 * DAY;
    expect(expiryDay(now, ttl)).toBe(dayOf(now) + 7);
    const old = record(1, dayOf(now) - 1);
    const live = record(2, dayOf(now));
    const admitted = admitReport([old, live], record(3), 2, dayOf(now));
    expect(admitted.outcome).toBe("stored");
    expect(admitted.records).toEqual([live, record(3)]);
  });
});
