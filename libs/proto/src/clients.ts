// The per-service definitions ts-proto generates (`outputServices=generic-definitions`) and the
// nice-grpc promise-client type of each. `createClient(AuthServiceDefinition, channel)` from
// nice-grpc returns an `AuthServiceClient`: unary RPCs return promises, streaming RPCs take and
// return async iterables, failures reject with nice-grpc's `ClientError` (a gRPC status code).
import type { Client } from "nice-grpc";
import { AuthAdminServiceDefinition } from "./gen/phoenix/admin/v1/admin.js";
import { FederationAdminServiceDefinition } from "./gen/phoenix/admin/v1/federation_admin.js";
import { QueueAdminServiceDefinition } from "./gen/phoenix/admin/v1/queue_admin.js";
import { AuthServiceDefinition } from "./gen/phoenix/auth/v1/auth.js";
import { DeliveryServiceDefinition } from "./gen/phoenix/delivery/v1/delivery.js";
import {
  FederationProxyServiceDefinition,
  FederationServiceDefinition,
} from "./gen/phoenix/federation/v1/federation.js";
import { QueueServiceDefinition } from "./gen/phoenix/queue/v1/queue.js";

// nice-grpc's client half, re-exported so a client needs only this package (and one nice-grpc).
export {
  type CallOptions,
  type Channel,
  ClientError,
  createChannel,
  createClient,
  createClientFactory,
  Metadata,
  Status,
} from "nice-grpc";

export {
  AuthAdminServiceDefinition,
  AuthServiceDefinition,
  DeliveryServiceDefinition,
  FederationAdminServiceDefinition,
  FederationProxyServiceDefinition,
  FederationServiceDefinition,
  QueueAdminServiceDefinition,
  QueueServiceDefinition,
};

/** Promise client of the Authentication Service (users, clients, credentials, connection queues). */
export type AuthServiceClient = Client<AuthServiceDefinition>;
/** Promise client of the Delivery Service (MLS groups, fan-out). */
export type DeliveryServiceClient = Client<DeliveryServiceDefinition>;
/** Promise client of the Queuing Service (pseudonymous queues, AddPackages, Listen). */
export type QueueServiceClient = Client<QueueServiceDefinition>;
/** Promise client of a remote homeserver's federation gateway (server to server). */
export type FederationServiceClient = Client<FederationServiceDefinition>;
/** Promise client of the homeserver-internal federation proxy (services to their gateway). */
export type FederationProxyServiceClient = Client<FederationProxyServiceDefinition>;
/** Promise client of the AS admin API (operators only, on the AS admin listener). */
export type AuthAdminServiceClient = Client<AuthAdminServiceDefinition>;
/** Promise client of the federation gateway's admin API (operators only, on its admin listener). */
export type FederationAdminServiceClient = Client<FederationAdminServiceDefinition>;
/** Promise client of the QS admin API (operators only, on the QS admin listener). */
export type QueueAdminServiceClient = Client<QueueAdminServiceDefinition>;
