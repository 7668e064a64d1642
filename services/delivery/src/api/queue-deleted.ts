import { encodeHpkeCiphertext, HpkePublicKey, hpkeSeal } from "@phoenix/crypto";
import { common, events } from "@phoenix/proto";
import type { BusMessage } from "@phoenix/runtime/bus";
import { appendQueueReport, readGroup } from "../store/group-store.js";
import { type DsDeps, QUEUE_REPORT_LABEL } from "./pipeline.js";

/**
 * Consumes a QueueDeleted event: the DS has no EAR key here, so it seals the reported queue
 * reference to the group's report key and appends it to the row; the next request that decrypts
 * the group turns it into a required removal. Reports for unknown groups or other domains are
 * dropped (acked): there is nothing to remove.
 */
export async function handleQueueDeleted(deps: DsDeps, message: BusMessage): Promise<void> {
  let event: events.QueueDeleted;
  try {
    event = events.QueueDeleted.decode(message.data);
  } catch {
    return;
  }
  const groupId = event.groupId;
  if (groupId === undefined || groupId.domain !== deps.ctx.domain || groupId.uuid.length !== 16) return;
  if (event.recipient === undefined) return;
  const row = await readGroup(deps.db, groupId.uuid);
  if (row === undefined) return;
  const sealed = hpkeSeal(
    HpkePublicKey.fromBytes(row.queueReportKey),
    QUEUE_REPORT_LABEL,
    common.QsReference.encode(event.recipient).finish(),
    { aad: groupId.uuid },
  );
  await appendQueueReport(deps.db, groupId.uuid, encodeHpkeCiphertext(sealed));
}
