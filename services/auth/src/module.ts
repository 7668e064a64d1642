import { fileDescriptorSet } from "@phoenix/proto";
import { defineServiceModule } from "@phoenix/runtime/module";
import { authConfigSchema } from "./config.js";
import { authMigrationsFolder, createAuthService } from "./service.js";

/** What no config variable sets: the AS's clock (tests move it to exercise expiry). */
export interface AuthModuleExtras {
  /** Clock in ms since the epoch (default Date.now). */
  now?: () => number;
}

/**
 * The Authentication Service as a service module with `extras`: tests use it to inject a clock;
 * deployments run {@link authModule}.
 */
export function authModuleWith(extras: AuthModuleExtras) {
  return defineServiceModule({
    name: "auth",
    config: authConfigSchema,
    grpc: true,
    storage: { migrationsFolder: authMigrationsFolder },
    // Embedded, every AS caller is in this process: the edge gateway, whose `x-forwarded-for`
    // names the real client, and the federation gateway, both on loopback. AS_KEY_ENCRYPTION_KEY
    // is a secret, not a setting: the embedder hands it in with the module's overrides.
    embed: ({ domain }) => ({ AS_DOMAIN: domain, AS_TRUSTED_PROXIES: ["127.0.0.1", "::1"] }),
    async create({ config, logger, onShutdown, database, bus, router }) {
      const service = await createAuthService({
        db: database.db,
        bus,
        config,
        log: logger,
        ...(router ? { router } : {}),
        ...(extras.now ? { now: extras.now } : {}),
      });
      onShutdown(service, "auth service");
      return {
        service,
        services: [service.registration],
        // Never on the public listener: the runner serves these on ADMIN_GRPC_HOST:ADMIN_GRPC_PORT.
        admin: { services: [service.adminRegistration] },
        workers: service.workers,
        reflection: { descriptorSet: fileDescriptorSet() },
      };
    },
  });
}

/**
 * The Authentication Service: users, clients, credentials, handles and connection queues. Its
 * config is `authConfigSchema`; embedded, `embed` sets its domain and trusts the in-process gateways.
 */
export const authModule = authModuleWith({});
