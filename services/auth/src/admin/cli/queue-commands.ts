// The QS commands of `phoenix-admin` (QueueAdminService): queue statistics.
import { queueAdmin } from "@phoenix/proto";
import type { Command } from "./command.js";

const S = queueAdmin.QueueAdminServiceService;
const MAX = 18_446_744_073_709_551_615n;

function buckets(list: readonly queueAdmin.HistogramBucket[], unit: (n: bigint) => string) {
  return list.map((b, i) => ({
    upTo: b.upperBound === MAX ? null : Number(b.upperBound),
    label: b.upperBound === MAX ? `>${unit(list[i - 1]?.upperBound ?? 0n)}` : `≤${unit(b.upperBound)}`,
    count: Number(b.count),
  }));
}

const seconds = (n: bigint) => {
  const s = Number(n);
  return s % 86_400 === 0 ? `${s / 86_400}d` : s % 3600 === 0 ? `${s / 3600}h` : `${s}s`;
};

/** The QS commands by name. */
export const queueCommands: Record<string, Command> = {
  "queues stats": {
    service: "queue",
    usage: "queues stats",
    summary: "queue count, messages, and depth and oldest-message age histograms (no queue ids)",
    async run({ queue, sign, print }) {
      const r = await queue.getQueueStats(await sign(queueAdmin.GetQueueStatsTbs, S.getQueueStats, {}));
      const depth = buckets(r.depth, (n) => String(n));
      const age = buckets(r.oldestMessageAgeSeconds, seconds);
      print(
        {
          queues: Number(r.queues),
          messages: Number(r.messages),
          depth: depth.map(({ upTo, count }) => ({ upTo, count })),
          oldestMessageAgeSeconds: age.map(({ upTo, count }) => ({ upTo, count })),
        },
        [
          `queues: ${r.queues}`,
          `messages: ${r.messages}`,
          `depth: ${depth.map((b) => `${b.label}=${b.count}`).join("  ")}`,
          `oldest message age: ${age.map((b) => `${b.label}=${b.count}`).join("  ")}`,
        ],
      );
    },
  },
};
