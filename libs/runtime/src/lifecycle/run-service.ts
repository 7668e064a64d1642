import type { ChannelOptions, ServerCredentials, ServerInterceptor } from "@grpc/grpc-js";
import type { DestinationStream } from "pino";
import type { z } from "zod";
import { type BaseConfig, baseConfigSchema } from "../config/base-config.js";
import { ConfigError, type Env, loadConfig } from "../config/load-config.js";
import type { RpcError } from "../errors/rpc-errors.js";
import { createGrpcServer, type GrpcServer } from "../grpc/grpc-server.js";
import type { ServiceRegistration } from "../grpc/handlers.js";
import type { ReflectionSource } from "../grpc/reflection.js";
import { pause } from "../health/backoff.js";
import { Readiness } from "../health/readiness.js";
import { createLogger, type Logger } from "../log/create-logger.js";
import { createMetrics, type Metrics } from "../metrics/create-metrics.js";
import { type MetricsServer, startMetricsServer } from "../metrics/metrics-server.js";
import { registerReadinessMetric } from "../metrics/operational-metrics.js";
import { type Closeable, closeAll, type NamedCloseable } from "./closeables.js";

/** What `setup` gets to build the service's domain from. */
export interface ServiceRuntime<C extends BaseConfig> {
  readonly config: C;
  readonly logger: Logger;
  /** The service's registry: add domain metrics with `registers: [metrics.registry]`. */
  readonly metrics: Metrics;
  /**
   * The process's readiness (`/readyz` on the metrics port, gRPC health): register the
   * dependencies whose loss makes the service unable to serve, and report them as they come and go.
   */
  readonly readiness: Readiness;
  /**
   * Registers something to release on shutdown, after the gRPC server (if any) drained. Resources
   * close in reverse order of registration: register the database before the relay that uses it.
   */
  onShutdown(resource: Closeable, name?: string): void;
}

/** What `setup` returns: the services to serve and how. */
export interface ServiceSetup {
  services: readonly ServiceRegistration[];
  reflection?: ReflectionSource;
  credentials?: ServerCredentials;
  channelOptions?: ChannelOptions;
  interceptors?: readonly ServerInterceptor[];
  /** See `CreateGrpcServerOptions.translateError`. */
  translateError?: (error: unknown) => RpcError | undefined;
}

/** What every `runService` call takes, with or without a gRPC server. */
export interface RunServiceCommonOptions<S extends z.ZodObject> {
  /** The service's env schema: `serviceConfig({...})` extended with its own fields. */
  config: S;
  /** Default: `process.env`. */
  env?: Env;
  /**
   * Signals that start a graceful shutdown (default SIGTERM and SIGINT); `false` installs no
   * process handlers at all (embedding, tests).
   */
  signals?: readonly NodeJS.Signals[] | false;
  /** Called with the exit code once shut down (default `process.exit`); `false`: just resolve `finished`. */
  exit?: ((code: number) => void) | false;
  /** Log destination (default stdout). */
  logDestination?: DestinationStream;
  /**
   * Typed config values that replace their env variables (an embedding process's settings, no
   * env-string round trip); see `loadConfig`.
   */
  overrides?: Partial<z.output<S>>;
  /**
   * An embedding process's metrics to record into instead of a fresh registry (its metrics
   * endpoint then shows this service's metrics too); the service's own endpoint serves it as well.
   */
  metrics?: Metrics;
}

export interface RunServiceOptions<S extends z.ZodObject> extends RunServiceCommonOptions<S> {
  /** Serve gRPC (the default); `false`: see {@link RunServiceWithoutGrpcOptions}. */
  grpc?: true;
  /** Opens the service's resources (register each with `onShutdown`) and returns its services. */
  setup(runtime: ServiceRuntime<z.output<S> & BaseConfig>): Promise<ServiceSetup> | ServiceSetup;
}

/**
 * A process with no gRPC server of its own (an HTTP front door, a worker): the same config,
 * logger, metrics endpoint, signals and shutdown, but `setup` starts its own listeners, registers
 * them with `onShutdown` (they are closed first on shutdown when registered last) and returns
 * nothing. `GRPC_*` variables are parsed but unused.
 */
export interface RunServiceWithoutGrpcOptions<S extends z.ZodObject> extends RunServiceCommonOptions<S> {
  grpc: false;
  setup(runtime: ServiceRuntime<z.output<S> & BaseConfig>): Promise<void> | void;
}

/** A process started by `runService`, with or without a gRPC server. */
export interface RunningProcess<C extends BaseConfig> {
  readonly config: C;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly metricsServer: MetricsServer;
  /** Ready once started, while its dependencies are up and until shutdown begins. */
  readonly readiness: Readiness;
  /**
   * Starts the graceful shutdown (idempotent); a second call while it runs cancels in-flight
   * calls at once instead of waiting out the grace period. Resolves with the exit code.
   */
  shutdown(reason?: string): Promise<number>;
  /** Resolves with the exit code once the service has shut down. */
  readonly finished: Promise<number>;
}

/** A service started by `runService` with its gRPC server. */
export interface RunningService<C extends BaseConfig> extends RunningProcess<C> {
  readonly grpc: GrpcServer;
  readonly grpcPort: number;
}

const BASE_KEYS = Object.keys(baseConfigSchema.shape);

/** The service failed to start; its resources have been released. */
export class ServiceStartError extends Error {
  override readonly name = "ServiceStartError";
}

/**
 * Runs a service: config → logger → metrics endpoint → `setup` → gRPC server, then on
 * SIGTERM/SIGINT a graceful shutdown: health NOT_SERVING, stop accepting, drain in-flight calls
 * for `SHUTDOWN_GRACE_MS` then cancel them, close registered resources in reverse order, exit 0
 * (1 when something failed to close or a handler ignored its cancellation). A second signal
 * cancels in-flight calls immediately; a third exits at once with code 1.
 * A bad config or a failing `setup` logs why and exits 1.
 * With `grpc: false` there is no gRPC server: config → logger → metrics endpoint → `setup`, and
 * shutdown closes the registered resources and the metrics endpoint.
 */
export function runService<S extends z.ZodObject>(
  options: RunServiceOptions<S>,
): Promise<RunningService<z.output<S> & BaseConfig>>;
export function runService<S extends z.ZodObject>(
  options: RunServiceWithoutGrpcOptions<S>,
): Promise<RunningProcess<z.output<S> & BaseConfig>>;
export async function runService<S extends z.ZodObject>(
  options: RunServiceOptions<S> | RunServiceWithoutGrpcOptions<S>,
): Promise<RunningProcess<z.output<S> & BaseConfig>> {
  type C = z.output<S> & BaseConfig;
  const exit = options.exit === undefined ? (code: number) => process.exit(code) : options.exit;
  const config: C = await loadServiceConfig(options, options.env ?? process.env, exit);
  const logger = createLogger({
    service: config.SERVICE_NAME,
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const metrics = options.metrics ?? createMetrics({ service: config.SERVICE_NAME });
  let forceDelay: () => void = () => {};
  const delayForced = new Promise<void>((resolve) => {
    forceDelay = resolve;
  });
  const state: ServiceState<C> = {
    config,
    logger,
    readiness: new Readiness(),
    resources: [],
    closeTimeoutMs: Math.max(config.SHUTDOWN_GRACE_MS, 1000),
    delayForced,
  };
  registerReadinessMetric(metrics.registry, state.readiness);
  const { metricsServer, grpc, grpcPort } = await startServing(options, { ...state, metrics, exit });

  let shutdownPromise: Promise<number> | undefined;
  let resolveFinished: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    resolveFinished = resolve;
  });
  const handlers = installProcessHandlers({
    signals: options.signals === false ? [] : (options.signals ?? ["SIGTERM", "SIGINT"]),
    logger,
    grpc,
    exit,
    shutdown: (reason) => service.shutdown(reason),
    forceDelay,
  });

  const service: RunningProcess<C> = {
    config,
    logger,
    metrics,
    metricsServer,
    readiness: state.readiness,
    finished,
    shutdown(reason = "requested") {
      if (shutdownPromise) {
        grpc?.force();
        forceDelay();
        return shutdownPromise;
      }
      shutdownPromise = shutDown({ ...state, grpc, metricsServer }, reason).then(async (code) => {
        const exitCode = handlers.fatal() ? 1 : code;
        handlers.remove();
        await flush(logger);
        resolveFinished(exitCode);
        if (exit) exit(exitCode);
        return exitCode;
      });
      return shutdownPromise;
    },
  };
  if (!grpc) return service;
  const withGrpc: RunningService<C> = { ...service, grpc, grpcPort };
  return withGrpc;
}

type Exit = ((code: number) => void) | false;

/**
 * The service's config from its env and overrides; when it is invalid, logs why (under the
 * service's name if it can tell it) and fails the start.
 */
async function loadServiceConfig<S extends z.ZodObject>(
  options: RunServiceCommonOptions<S>,
  env: Env,
  exit: Exit,
): Promise<z.output<S> & BaseConfig> {
  try {
    const missing = BASE_KEYS.filter((key) => !(key in options.config.shape));
    if (missing.length > 0) {
      throw new TypeError(`the config schema must extend serviceConfig(); it lacks ${missing.join(", ")}`);
    }
    return loadConfig(options.config, env, options.overrides) as z.output<S> & BaseConfig;
  } catch (error) {
    const named: unknown = (options.overrides as { SERVICE_NAME?: unknown } | undefined)?.SERVICE_NAME;
    const logger = createLogger({
      service: typeof named === "string" && named !== "" ? named : env.SERVICE_NAME || "unknown",
      destination: options.logDestination,
    });
    if (error instanceof ConfigError) logger.fatal({ issues: error.issues }, error.message);
    else logger.fatal({ err: error }, "loading the configuration failed");
    return failStart(logger, exit, error);
  }
}

/** What the start and the shutdown of one service share. */
interface ServiceState<C extends BaseConfig> {
  readonly config: C;
  readonly logger: Logger;
  /** Registered with `onShutdown`, closed in reverse. */
  readonly resources: NamedCloseable[];
  readonly closeTimeoutMs: number;
  readonly readiness: Readiness;
  /** Resolves when a second signal or shutdown call cuts `SHUTDOWN_DELAY_MS` short. */
  readonly delayForced: Promise<void>;
}

interface Serving {
  metricsServer: MetricsServer;
  grpc: GrpcServer | undefined;
  grpcPort: number;
}

/**
 * Metrics endpoint → `setup` → gRPC server (unless `grpc: false`). When any step fails, releases
 * what started (gRPC server, registered resources, metrics endpoint) and fails the start.
 */
async function startServing<S extends z.ZodObject>(
  options: RunServiceOptions<S> | RunServiceWithoutGrpcOptions<S>,
  state: ServiceState<z.output<S> & BaseConfig> & { readonly metrics: Metrics; readonly exit: Exit },
): Promise<Serving> {
  const { config, logger, metrics, resources, readiness } = state;
  let metricsServer: MetricsServer | undefined;
  let grpc: GrpcServer | undefined;
  try {
    // Up before `setup`, so probes get answers while the service waits for its dependencies.
    metricsServer = await startMetricsServer({
      registry: metrics.registry,
      host: config.METRICS_HOST,
      port: config.METRICS_PORT,
      readiness,
    });
    logger.info({ host: config.METRICS_HOST, port: metricsServer.port }, "metrics listening");
    const runtime: ServiceRuntime<z.output<S> & BaseConfig> = {
      config,
      logger,
      metrics,
      readiness,
      onShutdown(resource, name) {
        resources.push({ name: name ?? `resource ${resources.length + 1}`, resource });
      },
    };
    if (options.grpc === false) {
      const returned: unknown = await options.setup(runtime);
      if (isServiceSetup(returned) && returned.services.length > 0) {
        // Services nobody would serve: a wiring mistake, not something to start without.
        throw new TypeError("setup returned gRPC services, but runService was called with grpc: false");
      }
      readiness.markStarted();
      return { metricsServer, grpc: undefined, grpcPort: 0 };
    }
    const setup = await options.setup(runtime);
    grpc = createGrpcServer({
      services: setup.services,
      config,
      logger,
      metrics,
      reflection: setup.reflection,
      ...(setup.credentials ? { credentials: setup.credentials } : {}),
      ...(setup.channelOptions ? { channelOptions: setup.channelOptions } : {}),
      ...(setup.interceptors ? { interceptors: setup.interceptors } : {}),
      ...(setup.translateError ? { translateError: setup.translateError } : {}),
    });
    const grpcPort = await grpc.start();
    // Every service name follows the readiness: NOT_SERVING while a dependency is down, SERVING
    // again once it is back (shutdown's NOT_SERVING then stays: readiness is false from then on).
    const server = grpc;
    const follow = (ready: boolean) => server.setHealth(ready ? "SERVING" : "NOT_SERVING");
    readiness.onChange(follow);
    readiness.markStarted();
    follow(readiness.ready);
    return { metricsServer, grpc, grpcPort };
  } catch (error) {
    logger.fatal({ err: error }, "service failed to start");
    grpc?.server.forceShutdown();
    await closeAll(resources, { timeoutMs: state.closeTimeoutMs, logger });
    await metricsServer?.close().catch(() => {});
    return failStart(logger, state.exit, error);
  }
}

/**
 * The graceful shutdown: drain the gRPC server, close the registered resources in reverse, then
 * the metrics endpoint. Resolves with the exit code: 1 when anything failed or was abandoned.
 */
async function shutDown<C extends BaseConfig>(
  state: ServiceState<C> & { readonly grpc: GrpcServer | undefined; readonly metricsServer: MetricsServer },
  reason: string,
): Promise<number> {
  const { config, logger, grpc } = state;
  logger.info({ reason, ...(grpc ? { inFlight: grpc.inFlight } : {}) }, "shutting down");
  state.readiness.markShuttingDown();
  let failed = false;
  if (!grpc && config.SHUTDOWN_DELAY_MS > 0) {
    // No gRPC health to flip: `/readyz` answers 503 from now on; keep serving while load
    // balancers notice, then close the listeners (a second signal cuts the wait short).
    const skip = new AbortController();
    void state.delayForced.then(() => skip.abort());
    await pause(config.SHUTDOWN_DELAY_MS, skip.signal).catch(() => {});
    skip.abort();
  }
  if (grpc) {
    try {
      const result = await grpc.shutdown({
        graceMs: config.SHUTDOWN_GRACE_MS,
        delayMs: config.SHUTDOWN_DELAY_MS,
      });
      if (result.abandoned > 0) {
        failed = true;
        logger.error(
          { abandoned: result.abandoned },
          "handlers ignored their cancellation; closing resources anyway",
        );
      }
    } catch (error) {
      failed = true;
      logger.error({ err: error }, "grpc server shutdown failed");
    }
  }
  const failedResources = await closeAll(state.resources, { timeoutMs: state.closeTimeoutMs, logger });
  if (failedResources.length > 0) failed = true;
  await state.metricsServer.close().catch((error: unknown) => {
    failed = true;
    logger.error({ err: error }, "closing the metrics endpoint failed");
  });
  const code = failed ? 1 : 0;
  logger.info({ exitCode: code }, "shutdown complete");
  return code;
}

interface ProcessHandlers {
  /** Whether an uncaught error started the shutdown (the exit code is then 1). */
  fatal(): boolean;
  remove(): void;
}

/**
 * The process handlers: the first signal shuts down, the second cancels in-flight calls, the third
 * exits at once with 1; with any signals, uncaught errors and unhandled rejections shut down too.
 */
function installProcessHandlers(options: {
  signals: readonly NodeJS.Signals[];
  logger: Logger;
  grpc: GrpcServer | undefined;
  exit: Exit;
  shutdown(reason: string): Promise<number>;
  /** Cuts `SHUTDOWN_DELAY_MS` short. */
  forceDelay(): void;
}): ProcessHandlers {
  const { signals, logger, grpc, exit } = options;
  let signalCount = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signalCount += 1;
    if (signalCount === 1) {
      void options.shutdown(signal);
    } else if (signalCount === 2) {
      options.forceDelay();
      if (grpc) {
        logger.warn({ signal }, "second signal: cancelling in-flight calls");
        grpc.force();
      } else {
        logger.warn({ signal }, "second signal: shutdown already under way");
      }
    } else {
      logger.fatal({ signal }, "third signal: exiting immediately");
      logger.flush();
      if (exit) exit(1);
    }
  };
  // A bug escaping every handler: still drain and close cleanly, but report failure.
  let fatal = false;
  const onFatal = (error: unknown) => {
    fatal = true;
    logger.fatal({ err: error }, "uncaught error: shutting down");
    void options.shutdown("uncaught error");
  };
  for (const signal of signals) process.on(signal, onSignal);
  if (signals.length > 0) {
    process.on("uncaughtException", onFatal);
    process.on("unhandledRejection", onFatal);
  }
  return {
    fatal: () => fatal,
    remove() {
      for (const signal of signals) process.off(signal, onSignal);
      process.off("uncaughtException", onFatal);
      process.off("unhandledRejection", onFatal);
    },
  };
}

function isServiceSetup(value: unknown): value is ServiceSetup {
  return typeof value === "object" && value !== null && Array.isArray((value as ServiceSetup).services);
}

async function failStart(logger: Logger, exit: Exit, cause: unknown): Promise<never> {
  await flush(logger);
  if (exit) exit(1);
  throw new ServiceStartError(cause instanceof Error ? cause.message : String(cause), { cause });
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}
