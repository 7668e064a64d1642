import { fileDescriptorSet } from "@phoenix/proto";
import { createGrpcServer } from "@phoenix/runtime/grpc";
import { defineServiceModule } from "@phoenix/runtime/module";
import { translateGatewayError } from "./api/translate-error.js";
import { gatewayConfigSchema } from "./config.js";
import { FederationGateway } from "./gateway.js";
import { isLoopbackHost, loadTls, serverCredentials } from "./outbound/tls.js";
import { GATEWAY_MIGRATIONS } from "./store/migrations.js";

/**
 * The federation gateway as a service module. The public FederationService is the runner's gRPC
 * listener (GRPC_HOST:GRPC_PORT, TLS from the config); the internal FederationProxyService gets
 * a plaintext listener of its own (FEDERATION_INTERNAL_HOST:PORT) so peers can never reach it,
 * published as `federationInternal`. Embedded, it forwards to the AS, DS and QS started before it
 * and points the embedder's shared federation router at its internal listener. Shutdown order:
 * the workers (key refresh, outbound lanes, pruning; in reverse), internal listener, gateway
 * (peer and upstream channels), then the runner's bus and database.
 */
export const federationGatewayModule = defineServiceModule({
  name: "federation-gateway",
  config: gatewayConfigSchema,
  grpc: true,
  storage: { migrationsFolder: GATEWAY_MIGRATIONS },
  // The public listener (GRPC_HOST/GRPC_PORT) is the embedder's to set: the all-in-one homeserver
  // puts it on FEDERATION_HOST/FEDERATION_PORT. FEDERATION_KEY_ENCRYPTION_KEY stays required.
  embed: ({ domain, addresses, bus }) => ({
    FEDERATION_DOMAIN: domain,
    FEDERATION_INTERNAL_HOST: "127.0.0.1",
    FEDERATION_INTERNAL_PORT: 0,
    FEDERATION_AS_ADDRESS: addresses.auth,
    FEDERATION_DS_ADDRESS: addresses.delivery,
    FEDERATION_QS_ADDRESS: addresses.queue,
    // A namespaced embedder's bus names replace the stream and prefix variables.
    FEDERATION_SUBJECT_PREFIX: bus?.subjectPrefix,
    FEDERATION_FANOUT_STREAM: bus?.streams.fanOut,
    FEDERATION_QUEUE_DELETED_STREAM: bus?.streams.queueDeleted,
    FEDERATION_OUTBOUND_STREAM: bus?.streams.federation,
  }),
  async create({ config, logger, metrics, readiness, onShutdown, database, bus, router }) {
    const tls = loadTls(config);
    if (tls.plaintext && tls.loopbackOnly !== true) {
      // The explicit opt-in: loud, on every start, so it cannot go unnoticed into production.
      logger.warn(
        { listener: config.GRPC_HOST, loopback: isLoopbackHost(config.GRPC_HOST) },
        "FEDERATION_INSECURE_PLAINTEXT=true: federation runs WITHOUT TLS; peers' domain keys and all " +
          "server-to-server traffic can be read and replaced on path. Tests and local development only",
      );
    } else if (tls.plaintext) {
      logger.info(
        { listener: config.GRPC_HOST },
        "federation without TLS on loopback only: peers are dialled on loopback addresses only",
      );
    }
    const credentials = serverCredentials(tls);
    const gateway = await FederationGateway.create({
      config,
      database,
      bus,
      logger,
      tls,
      metricsRegistry: metrics.registry,
    });
    onShutdown(gateway, "federation gateway");

    const internal = createGrpcServer({
      services: [gateway.proxy],
      config: {
        ...config,
        GRPC_HOST: config.FEDERATION_INTERNAL_HOST,
        GRPC_PORT: config.FEDERATION_INTERNAL_PORT,
      },
      logger: logger.child({ listener: "internal" }),
      metrics,
      translateError: translateGatewayError,
    });
    const internalPort = await internal.start();
    // Its health follows the process's readiness like the public listener's (database, NATS, shutdown).
    readiness.onChange((ready) => internal.setHealth(ready ? "SERVING" : "NOT_SERVING"));
    onShutdown(() => internal.shutdown({ graceMs: config.SHUTDOWN_GRACE_MS }), "internal grpc server");
    const internalAddress = `${dialHost(config.FEDERATION_INTERNAL_HOST)}:${internalPort}`;
    // The embedder's AS, DS and QS send requests for other domains through this listener.
    router?.connect(internalAddress);
    logger.info(
      { domain: config.FEDERATION_DOMAIN, tls: !tls.plaintext, mutualTls: tls.mutual, internalPort },
      "federation gateway ready",
    );
    return {
      gateway,
      internalPort,
      addresses: { federationInternal: internalAddress },
      services: [gateway.federation],
      // Never on the public or internal listener: the runner serves it on ADMIN_GRPC_HOST:PORT.
      admin: { services: [gateway.admin], translateError: translateGatewayError },
      workers: gateway.workers,
      credentials,
      reflection: { descriptorSet: fileDescriptorSet() },
      translateError: translateGatewayError,
    };
  },
});

/** A host a local client can dial: wildcard listeners are reached on loopback, IPv6 bracketed. */
function dialHost(host: string): string {
  const dial = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return dial.includes(":") ? `[${dial}]` : dial;
}
