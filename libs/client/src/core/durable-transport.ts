// The transport as the client's flows see it: no request leaves before the store's commits are
// on disk (ClientStore.durable), so nothing the server learns — an acknowledgement, a message
// encrypted with a just-saved MLS state — can be undone by a power loss on the device.
import { AuthServiceDefinition, DeliveryServiceDefinition, QueueServiceDefinition } from "@phoenix/proto";
import type { Transport } from "../transport.js";

interface MethodShapes {
  methods: Record<string, { requestStream: boolean; responseStream: boolean }>;
}

/**
 * `transport` with every unary call made only after `ready()` resolves. Streaming calls (queue
 * listeners) pass through: their acknowledgements follow an operation that awaited `ready()`.
 */
export function durableTransport(transport: Transport, ready: () => Promise<void>): Transport {
  return {
    auth: afterReady(transport.auth, AuthServiceDefinition, ready),
    delivery: afterReady(transport.delivery, DeliveryServiceDefinition, ready),
    queue: afterReady(transport.queue, QueueServiceDefinition, ready),
    close: () => transport.close(),
  };
}

function afterReady<C extends object>(client: C, definition: MethodShapes, ready: () => Promise<void>): C {
  const unary = new Set(
    Object.entries(definition.methods)
      .filter(([, m]) => !m.requestStream && !m.responseStream)
      .map(([name]) => name),
  );
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== "string" || !unary.has(property) || typeof value !== "function") return value;
      return (...args: unknown[]) => ready().then(() => value.apply(target, args));
    },
  });
}
