import { randomBytes } from "node:crypto";
import type { events } from "@phoenix/proto";

/**
 * A fan-out federation envelope from `source` for one made-up recipient queue on `destination`
 * (random ids, group of `source`, a random sealed queue config), carrying `payload`.
 */
export function fanOutEnvelope(
  source: string,
  destination: string,
  payload: Uint8Array = new Uint8Array(randomBytes(32)),
): events.FederationEnvelope {
  return {
    envelopeId: new Uint8Array(randomBytes(16)),
    sourceDomain: source,
    destinationDomain: destination,
    content: {
      $case: "fanOut",
      value: {
        fanOutId: new Uint8Array(randomBytes(16)),
        groupId: { uuid: new Uint8Array(randomBytes(16)), domain: source },
        recipients: [{ domain: destination, sealedQueueConfig: new Uint8Array(randomBytes(32)) }],
        payload,
        suppressNotifications: false,
      },
    },
  };
}
