// The gateway's RPCs bound to their handlers: the one place a new RPC is registered. Every
// handler is `(ctx: GatewayContext, request, call?)` in its own file under api/.
import { federation } from "@phoenix/proto";
import { statusName } from "@phoenix/runtime/errors";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import type { GatewayContext } from "./api/context.js";
import { deliverFanOut } from "./api/deliver-fan-out.js";
import { forward } from "./api/forward.js";
import { getDomainKeys } from "./api/get-domain-keys.js";
import { proxy } from "./api/proxy.js";
import { reportQueueDeleted } from "./api/report-queue-deleted.js";
import { translateGatewayError } from "./api/translate-error.js";
import type { GatewayMetrics } from "./gateway-metrics.js";

/** The public FederationService (peer gateways, over TLS); refusals are counted in `metrics`. */
export function federationRoutes(ctx: GatewayContext, metrics: GatewayMetrics): ServiceRegistration {
  /** Counts the requests the gateway itself refuses (passed-through upstream statuses are not refusals). */
  async function counted<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const mapped = translateGatewayError(error);
      if (mapped && mapped.name !== "PassthroughStatusError")
        metrics.inboundRefused.inc({ code: statusName(mapped.code) });
      throw error;
    }
  }
  return defineService(federation.FederationServiceService, {
    getDomainKeys: unary((req) => getDomainKeys(ctx, req)),
    deliverFanOut: unary((req, call) => counted(() => deliverFanOut(ctx, req, call))),
    reportQueueDeleted: unary((req, call) => counted(() => reportQueueDeleted(ctx, req, call))),
    forward: unary((req, call) => counted(() => forward(ctx, req, call))),
  });
}

/** The internal FederationProxyService (this homeserver's services, never peers). */
export function proxyRoutes(ctx: GatewayContext): ServiceRegistration {
  return defineService(federation.FederationProxyServiceService, {
    proxy: unary((req, call) => proxy(ctx, req, call)),
  });
}
