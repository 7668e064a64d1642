import { randomBytes, toHex } from "@phoenix/crypto";
import { common, events } from "@phoenix/proto";
import type { QueueRef } from "./group-state.js";

/** One message for one set of recipients, before it gets an id and a timestamp. */
export interface FanOutPlan {
  recipients: QueueRef[];
  content: NonNullable<common.QueuePayload["content"]>;
  suppressNotifications: boolean;
}

/** An outbox record: subject, dedupe id (= hex of the 16-byte fan_out_id) and encoded FanOut. */
export interface FanOutRecord {
  subject: string;
  id: string;
  payload: Uint8Array;
}

/**
 * Encodes fan-out plans as FanOut events, stamped with the DS time. Group ids inside the payload
 * (WelcomeBundle, RequiredRemovals) are filled in here.
 */
export function encodeFanOuts(
  plans: readonly FanOutPlan[],
  groupId: common.QualifiedGroupId,
  timestamp: Date,
  subject: string,
): FanOutRecord[] {
  return plans
    .filter((p) => p.recipients.length > 0)
    .map((plan) => {
      const fanOutId = randomBytes(16);
      const content = withGroupId(plan.content, groupId);
      const payload = common.QueuePayload.encode({ timestamp, content }).finish();
      const fanOut: events.FanOut = {
        fanOutId,
        groupId,
        recipients: plan.recipients.map((r) => ({
          domain: r.domain,
          sealedQueueConfig: r.sealedQueueConfig,
        })),
        payload,
        suppressNotifications: plan.suppressNotifications,
      };
      return { subject, id: toHex(fanOutId), payload: events.FanOut.encode(fanOut).finish() };
    });
}

function withGroupId(
  content: FanOutPlan["content"],
  groupId: common.QualifiedGroupId,
): NonNullable<common.QueuePayload["content"]> {
  switch (content.$case) {
    case "welcomeBundle":
      return { $case: "welcomeBundle", value: { ...content.value, groupId } };
    case "requiredRemovals":
      return { $case: "requiredRemovals", value: { ...content.value, groupId } };
    default:
      return content;
  }
}
