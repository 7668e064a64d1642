import { randomBytes, toHex } from "@phoenix/crypto";
import { type common, events } from "@phoenix/proto";
import type { Subscription } from "@phoenix/runtime/bus";
import { DOMAIN, type Harness } from "./harness.js";

/** A group of this homeserver with a random id. */
export function localGroup(): common.QualifiedGroupId {
  return { uuid: randomBytes(16), domain: DOMAIN };
}

/** Publishes a FanOut the way the DS outbox relay does (dedupe id = hex(fan_out_id) unless given). */
export async function publishFanOut(
  h: Harness,
  fanOut: Partial<events.FanOut> & { recipients: common.QsReference[] },
  busId?: string,
): Promise<events.FanOut> {
  const full: events.FanOut = {
    fanOutId: fanOut.fanOutId ?? randomBytes(16),
    groupId: fanOut.groupId ?? localGroup(),
    recipients: fanOut.recipients,
    payload: fanOut.payload ?? randomBytes(64),
    suppressNotifications: fanOut.suppressNotifications ?? false,
  };
  await h.bus.publish(`${h.prefix}phoenix.fanout`, events.FanOut.encode(full).finish(), {
    id: busId ?? toHex(full.fanOutId),
  });
  return full;
}

/** Collects every message of one of the harness's streams (its own durable). */
export class StreamCollector {
  readonly messages: { subject: string; data: Uint8Array; id: string }[] = [];
  private subscription: Subscription | undefined;

  static async start(h: Harness, stream: string): Promise<StreamCollector> {
    const c = new StreamCollector();
    c.subscription = await h.bus.consume(
      { stream, durable: `collector-${toHex(randomBytes(4))}` },
      async (m) => {
        c.messages.push({ subject: m.subject, data: m.data, id: m.id });
      },
    );
    return c;
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}
