import {
  createFileRegistry,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  type Registry,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { fileDescriptorSet, type RpcInfo, rpcCatalog } from "@phoenix/proto";

/** The upstream services the gateway fronts, by their short name. */
export type UpstreamName = "auth" | "delivery" | "queue";

/** Fully qualified name of each client-facing service. */
export const CLIENT_SERVICES: Readonly<Record<UpstreamName, string>> = {
  auth: "phoenix.auth.v1.AuthService",
  delivery: "phoenix.delivery.v1.DeliveryService",
  queue: "phoenix.queue.v1.QueueService",
};

/** URL prefix of each service (`/v1/as/…`), also used for its WebSocket routes. */
export const SERVICE_PREFIX: Readonly<Record<UpstreamName, string>> = {
  auth: "as",
  delivery: "ds",
  queue: "qs",
};

/** The upstream that serves `service`, or undefined when the gateway does not expose it. */
export function upstreamOf(service: string): UpstreamName | undefined {
  for (const [name, full] of Object.entries(CLIENT_SERVICES)) {
    if (full === service) return name as UpstreamName;
  }
  return undefined;
}

/**
 * The RPCs the gateway exposes: every RPC of the client-facing services (AS, DS, QS). Unary ones
 * with a `google.api.http` rule become REST routes, bidi-streaming ones WebSocket routes; the
 * federation services are server-to-server and never reachable from here.
 */
export function clientRpcs(catalog: readonly RpcInfo[] = rpcCatalog()): RpcInfo[] {
  return catalog.filter((rpc) => upstreamOf(rpc.service) !== undefined);
}

let cachedRegistry: FileRegistry | undefined;

/** Every message, enum and service of the contracts (with comments), for JSON and OpenAPI. */
export function contractRegistry(): FileRegistry {
  cachedRegistry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, fileDescriptorSet()));
  return cachedRegistry;
}

/** The descriptor of a fully qualified message name; throws when the contracts lack it. */
export function messageDesc(typeName: string, registry: Registry = contractRegistry()): DescMessage {
  const desc = registry.getMessage(typeName);
  if (!desc) throw new Error(`message ${typeName} is not in the contracts`);
  return desc;
}
