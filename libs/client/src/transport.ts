import { auth, delivery, queue } from "@phoenix/proto";
import { createChannel, createServiceClient, type ServiceClient } from "@phoenix/wire";

type Channel = ReturnType<typeof createChannel>;

/** The three homeserver services a client talks to. */
export interface Transport {
  readonly auth: ServiceClient<typeof auth.AuthServiceService>;
  readonly delivery: ServiceClient<typeof delivery.DeliveryServiceService>;
  readonly queue: ServiceClient<typeof queue.QueueServiceService>;
  /** Closes the connections. */
  close(): void;
}

/** `host:port` of each service (in a deployment all three sit behind the edge gateway). */
export interface GrpcAddresses {
  auth: string;
  delivery: string;
  queue: string;
}

/** A transport over the generated gRPC SDK, straight to the AS, DS and QS. */
export function createGrpcTransport(
  addresses: GrpcAddresses,
  options: { deadlineMs?: number } = {},
): Transport {
  const channels: Channel[] = [];
  const open = (address: string): Channel => {
    const channel = createChannel(address);
    channels.push(channel);
    return channel;
  };
  const defaults = { defaultDeadlineMs: options.deadlineMs ?? 20_000 };
  return {
    auth: createServiceClient(auth.AuthServiceService, open(addresses.auth), defaults),
    delivery: createServiceClient(delivery.DeliveryServiceService, open(addresses.delivery), defaults),
    queue: createServiceClient(queue.QueueServiceService, open(addresses.queue), defaults),
    close() {
      for (const c of channels) c.close();
    },
  };
}
