import { AuthServiceDefinition, DeliveryServiceDefinition, QueueServiceDefinition } from "@phoenix/proto";
import { createChannel, createServiceClient, type ServiceClient } from "@phoenix/wire";

type Channel = ReturnType<typeof createChannel>;

/** The three homeserver services a client talks to. */
export interface Transport {
  readonly auth: ServiceClient<AuthServiceDefinition>;
  readonly delivery: ServiceClient<DeliveryServiceDefinition>;
  readonly queue: ServiceClient<QueueServiceDefinition>;
  /** Closes the connections. */
  close(): void;
}

/** `host:port` of each service (in a deployment all three sit behind the edge gateway). */
export interface GrpcAddresses {
  auth: string;
  delivery: string;
  queue: string;
}

/** A transport over the generated gRPC clients (nice-grpc), straight to the AS, DS and QS. */
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
    auth: createServiceClient(AuthServiceDefinition, open(addresses.auth), defaults),
    delivery: createServiceClient(DeliveryServiceDefinition, open(addresses.delivery), defaults),
    queue: createServiceClient(QueueServiceDefinition, open(addresses.queue), defaults),
    close() {
      for (const c of channels) c.close();
    },
  };
}
