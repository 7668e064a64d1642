import {
  type ChannelOptions,
  Server,
  ServerCredentials,
  type ServerInterceptor,
  type ServiceDefinition,
} from "@grpc/grpc-js";
import { ServiceDefinitionError } from "@phoenix/wire";
import { HealthImplementation } from "grpc-health-check";
import type { BaseConfig } from "../config/base-config.js";
import type { RpcError } from "../errors/rpc-errors.js";
import type { Logger } from "../log/create-logger.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { bindService, wrapDefinition } from "./bind-service.js";
import { CallTracker } from "./call-tracker.js";
import type { ServiceRegistration } from "./handlers.js";
import { observeCalls } from "./observe-calls.js";
import { createReflection, type ReflectionSource } from "./reflection.js";

/** The config fields the server reads (a subset of every service config). */
export type GrpcServerConfig = Pick<
  BaseConfig,
  "GRPC_HOST" | "GRPC_PORT" | "GRPC_MAX_MESSAGE_BYTES" | "GRPC_DEFAULT_DEADLINE_MS"
>;

export interface CreateGrpcServerOptions {
  services: readonly ServiceRegistration[];
  config: GrpcServerConfig;
  logger: Logger;
  /** Records `grpc_server_*` metrics for every call when given. */
  metrics?: Metrics | undefined;
  /** Enables server reflection over these schemas. */
  reflection?: ReflectionSource | undefined;
  /** Default: plaintext (services sit behind the edge gateway / in-cluster network). */
  credentials?: ServerCredentials;
  /** Extra grpc-js channel options (keepalive, …); size limits come from the config. */
  channelOptions?: ChannelOptions;
  /** Extra interceptors, run after the built-in metrics/logging one. */
  interceptors?: readonly ServerInterceptor[];
  /**
   * Maps errors of libraries and domain code to RpcErrors before the status mapping, once per
   * service instead of a try/catch per handler (e.g. a crypto `BadSignatureError` →
   * `UnauthenticatedError`). Return undefined for errors it does not know.
   */
  translateError?: (error: unknown) => RpcError | undefined;
}

export type HealthStatus = "SERVING" | "NOT_SERVING";

export interface ShutdownOptions {
  /** How long in-flight calls may run before they are cancelled. */
  graceMs: number;
  /** Pause between reporting NOT_SERVING and closing the listener. */
  delayMs?: number;
}

export interface ShutdownResult {
  /** The grace period ran out (or `force()` was called) and remaining calls were cancelled. */
  forced: boolean;
  /** Handlers still running after being cancelled (they ignored their AbortSignal). */
  abandoned: number;
}

/** How long cancelled handlers get to unwind after a forced shutdown. */
const UNWIND_AFTER_FORCE_MS = 1000;

/**
 * A grpc-js server with everything a Phoenix service needs: size limits, default deadlines,
 * health (`grpc.health.v1`, overall `""` and per service), optional reflection, metrics and
 * access logs for every call, and a graceful shutdown that drains handlers.
 */
export class GrpcServer {
  readonly server: Server;
  /** Fully-qualified names of the services served. */
  readonly serviceNames: readonly string[];
  private readonly health: HealthImplementation;
  private readonly tracker = new CallTracker();
  private readonly config: GrpcServerConfig;
  private readonly logger: Logger;
  private readonly credentials: ServerCredentials;
  private boundPort: number | undefined;
  private shutdownPromise: Promise<ShutdownResult> | undefined;
  private transportClosed: Promise<void> | undefined;
  private forceRequested: () => void = () => {};
  private readonly forced = new Promise<void>((resolve) => {
    this.forceRequested = resolve;
  });

  constructor(options: CreateGrpcServerOptions) {
    this.config = options.config;
    this.logger = options.logger;
    this.credentials = options.credentials ?? ServerCredentials.createInsecure();
    this.serviceNames = options.services.map((s) => s.name);
    const duplicate = this.serviceNames.find((name, i) => this.serviceNames.indexOf(name) !== i);
    if (duplicate) throw new ServiceDefinitionError(`service ${duplicate} registered twice`);

    this.server = new Server({
      ...options.channelOptions,
      "grpc.max_receive_message_length": this.config.GRPC_MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": this.config.GRPC_MAX_MESSAGE_BYTES,
      interceptors: [
        observeCalls({
          logger: this.logger,
          metrics: options.metrics?.rpc,
          quietServices: new Set(["grpc.health.v1.Health"]),
        }),
        ...(options.interceptors ?? []),
      ],
    });

    const runtime = {
      logger: this.logger,
      defaultDeadlineMs: this.config.GRPC_DEFAULT_DEADLINE_MS,
      tracker: this.tracker,
      translateError: options.translateError,
    };
    for (const registration of options.services) {
      // The wrapped definition is structurally a grpc-js ServiceDefinition; only the request
      // type is erased.
      const definition = wrapDefinition(registration.definition) as unknown as ServiceDefinition;
      this.server.addService(definition, bindService(registration, runtime));
    }

    this.health = new HealthImplementation(
      Object.fromEntries(["", ...this.serviceNames].map((name) => [name, "NOT_SERVING" as const])),
    );
    this.health.addToServer(this.server);

    if (options.reflection) {
      const { reflection, undescribed } = createReflection(options.reflection, this.serviceNames);
      if (undescribed.length > 0) {
        this.logger.warn({ services: undescribed }, "reflection source does not describe these services");
      }
      reflection.addToServer(this.server);
    }
  }

  /** The bound port once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  /** Handlers currently running. */
  get inFlight(): number {
    return this.tracker.size;
  }

  /** Binds `GRPC_HOST:GRPC_PORT` (port 0 picks one), reports SERVING, and resolves with the port. */
  async start(): Promise<number> {
    if (this.boundPort !== undefined) return this.boundPort;
    const host = this.config.GRPC_HOST.includes(":") ? `[${this.config.GRPC_HOST}]` : this.config.GRPC_HOST;
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${this.config.GRPC_PORT}`, this.credentials, (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    this.boundPort = port;
    this.setHealth("SERVING");
    this.logger.info(
      { host: this.config.GRPC_HOST, port, services: this.serviceNames },
      "grpc server listening",
    );
    return port;
  }

  /**
   * Sets the health status of one service, or (without `service`) of the server as a whole and
   * every service in it.
   */
  setHealth(status: HealthStatus, service?: string): void {
    if (service !== undefined) {
      this.health.setStatus(service, status);
      return;
    }
    for (const name of ["", ...this.serviceNames]) this.health.setStatus(name, status);
  }

  /**
   * Graceful shutdown: NOT_SERVING, optional delay, streaming calls that asked for it are
   * aborted (UNAVAILABLE), the listener closes (new calls fail with UNAVAILABLE), in-flight
   * calls get `graceMs` to finish, then the rest are cancelled. Idempotent.
   */
  shutdown(options: ShutdownOptions): Promise<ShutdownResult> {
    this.shutdownPromise ??= this.runShutdown(options);
    return this.shutdownPromise;
  }

  /** Ends the current shutdown's waiting now (e.g. on a second SIGTERM). */
  force(): void {
    this.forceRequested();
  }

  private async runShutdown({ graceMs, delayMs = 0 }: ShutdownOptions): Promise<ShutdownResult> {
    this.setHealth("NOT_SERVING");
    if (delayMs > 0 && (await this.waitOrForce(new Promise(() => {}), delayMs)) === "forced") {
      return this.forceStop();
    }
    this.tracker.beginShutdown();
    this.logger.info({ inFlight: this.tracker.size, graceMs }, "grpc server draining");
    const transportClosed = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.transportClosed = transportClosed;
    const drained = Promise.all([transportClosed, this.tracker.idle(graceMs)]).then(([, idle]) => idle);
    const outcome = await this.waitOrForce(drained, graceMs);
    if (outcome === true) return { forced: false, abandoned: 0 };
    return this.forceStop();
  }

  private async forceStop(): Promise<ShutdownResult> {
    this.logger.warn({ inFlight: this.tracker.size }, "grpc server cancelling remaining calls");
    this.tracker.abortAll();
    // Cancelled handlers answer UNAVAILABLE; let those statuses reach the clients before the
    // connections are torn down.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([this.transportClosed, this.tracker.idle(UNWIND_AFTER_FORCE_MS)]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, UNWIND_AFTER_FORCE_MS);
      }),
    ]);
    clearTimeout(timer);
    this.tracker.wakeAll();
    this.server.forceShutdown();
    return { forced: true, abandoned: this.tracker.size };
  }

  private async waitOrForce<T>(work: Promise<T>, timeoutMs: number): Promise<T | "timeout" | "forced"> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      return await Promise.race([work, timeout, this.forced.then(() => "forced" as const)]);
    } finally {
      clearTimeout(timer);
      this.tracker.wakeAll();
    }
  }
}

/** Creates the server without binding it (add more services to `.server` before `start()`). */
export function createGrpcServer(options: CreateGrpcServerOptions): GrpcServer {
  return new GrpcServer(options);
}

/** Creates and starts the server; `.port` holds the bound port. */
export async function startGrpcServer(options: CreateGrpcServerOptions): Promise<GrpcServer> {
  const server = new GrpcServer(options);
  await server.start();
  return server;
}
