import { encodeHpkeCiphertext, HpkePublicKey, hpkeSeal } from "@phoenix/crypto";
import { common, events } from "@phoenix/proto";
import type { BusMessage } from "@phoenix/runtime/bus";
import { dayOf, expiryDay, queueReportTag } from "../domain/queue-reports.js";
import { addQueueReport, readQueueReportKey } from "../store/group-store.js";
import type { DeliveryContext } from "./context.js";
import { QUEUE_REPORT_LABEL } from "./pipeline.js";

/**
 * Bus header with which the federation gateway names the peer domain whose signature it verified
 * on an inbound report; reports without it come from this homeserver's own QS.
 */
export const SOURCE_DOMAIN_HEADER = "phoenix-source-domain";

/**
 * Consumes a QueueDeleted event: the DS has no EAR key here, so it seals the reported queue
 * reference to the group's report key and adds it to the row (deduplicated, capped and expiring:
 * domain/queue-reports.ts); the next request that decrypts the group turns it into a required
 * removal. Dropped (acked), as there is nothing to remove: reports for unknown groups or other
 * domains, and reports naming a recipient of a domain other than the reporter's — only the QS
 * holding a queue knows it is gone, so a report may only name the reporter's own recipients.
 */
export async function handleQueueDeleted(ctx: DeliveryContext, message: BusMessage): Promise<void> {
  let event: events.QueueDeleted;
  try {
    event = events.QueueDeleted.decode(message.data);
  } catch {
    return;
  }
  const groupId = event.groupId;
  if (groupId === undefined || groupId.domain !== ctx.domain || groupId.uuid.length !== 16) return;
  if (event.recipient === undefined) return;
  const reporter = message.headers[SOURCE_DOMAIN_HEADER] ?? ctx.domain;
  if (event.recipient.domain !== reporter) return;
  const reportKey = await readQueueReportKey(ctx.db, groupId.uuid);
  if (reportKey === undefined) return;
  const reference = common.QsReference.encode(event.recipient).finish();
  const sealed = hpkeSeal(HpkePublicKey.fromBytes(reportKey), QUEUE_REPORT_LABEL, reference, {
    aad: groupId.uuid,
  });
  const now = ctx.now();
  await addQueueReport(
    ctx.db,
    groupId.uuid,
    {
      tag: queueReportTag(groupId.uuid, reference),
      expiresDay: expiryDay(now, ctx.queueReports.ttlMs),
      sealed: encodeHpkeCiphertext(sealed),
    },
    ctx.queueReports.max,
    dayOf(now),
  );
}
