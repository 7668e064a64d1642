import type { z } from "zod";
import type { BusTopology } from "../bus/layout.js";
import type { Bus } from "../bus/types.js";
import type { BaseConfig, LogLevel } from "../config/base-config.js";
import type { DatabaseHandle } from "../db/open-database.js";
import type { FederationRouter } from "../federation/router.js";
import type { ServiceRuntime, ServiceSetup } from "../lifecycle/run-service.js";
import type { Metrics } from "../metrics/create-metrics.js";
import type { AdminListenerSetup } from "./admin-listener.js";
import type { Worker } from "./worker.js";

/** What the runner opens for a module before `create`: its database (migrated) and the bus. */
export interface ModuleStorage {
  /** The module's drizzle migrations, applied when the runner opens the database. */
  readonly migrationsFolder?: string;
  /** Open the bus too (default true); the embedded bus lives in the module's database. */
  readonly bus?: boolean;
}

/**
 * Typed settings an embedding runner (all-in-one homeserver, test harness) gives every module;
 * `embed` maps them onto the module's own config keys.
 */
export interface EmbedSettings {
  /** The homeserver's domain. */
  readonly domain: string;
  /** Where embedded modules keep files (PGlite databases, key files). */
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** Each module's drain bound on shutdown. */
  readonly shutdownGraceMs: number;
  /**
   * Addresses published by the modules started before this one: `{ [module name]: "host:port" }`
   * of each gRPC listener, plus what each instance published (e.g. `federationInternal`).
   */
  readonly addresses: Readonly<Record<string, string>>;
  /**
   * The bus names of a namespaced homeserver (`busTopology(namespace)`): `embed` maps its streams,
   * subjects and durables onto the module's own variables (`DS_FANOUT_SUBJECT`, `QS_*_STREAM`,
   * `FEDERATION_SUBJECT_PREFIX`, …). Absent: those variables decide, whose defaults are
   * `busTopology()`.
   */
  readonly bus?: BusTopology;
}

/** Resources an embedder or a test hands to a module instead of letting the runner open them. */
export interface ModuleResources {
  /** Used instead of opening DATABASE_URL / DATA_DIR; the caller closes it. */
  readonly database?: DatabaseHandle;
  /** Used instead of opening NATS_URL / the embedded bus; the caller closes it. */
  readonly bus?: Bus;
  /** A federation router shared by several modules (the caller closes it). */
  readonly router?: FederationRouter;
  /** The embedder's metrics, recorded into instead of a fresh registry (its endpoint shows them). */
  readonly metrics?: Metrics;
}

/** The storage a module's host carries, as declared by its `storage` field. */
export type ModuleStorageOf<St> = St extends { readonly bus: false }
  ? { readonly database: DatabaseHandle }
  : St extends ModuleStorage
    ? { readonly database: DatabaseHandle; readonly bus: Bus }
    : Record<never, never>;

/**
 * What `create` builds the service from: runService's runtime (config, logger, metrics,
 * `onShutdown`), the storage the module declared, and a handed-in federation router if any.
 */
export type ModuleHost<C extends BaseConfig, St = undefined> = ServiceRuntime<C> & {
  /** Present when the embedder shares one router; otherwise the module builds its own from config. */
  readonly router?: FederationRouter;
} & ModuleStorageOf<St>;

/**
 * What `create` returns: the gRPC services to serve (gRPC modules), the background work to run
 * and what it publishes.
 */
export interface ModuleInstance extends Partial<ServiceSetup> {
  /**
   * Started by the runner in this order once `create` returned (before the gRPC server serves);
   * stopped in reverse order on shutdown, after the server drained and before what `create` and
   * the runner registered with `onShutdown` (the service's own resources, bus, database) closes.
   */
  readonly workers?: readonly Worker[];
  /**
   * Addresses this instance publishes for the modules started after it (e.g.
   * `{ federationInternal: "127.0.0.1:1234" }`) or URLs (`{ http: "http://127.0.0.1:8080" }`).
   * The runner adds `{ [name]: "host:port" }` of a gRPC module's listener itself.
   */
  readonly addresses?: Readonly<Record<string, string>>;
  /**
   * Operator admin RPCs, served by the runner on a listener of their own (ADMIN_GRPC_HOST /
   * ADMIN_GRPC_PORT from `adminListenerConfig`, which the module's schema must spread), never on
   * the public gRPC listener. Started after the workers, closed before them.
   */
  readonly admin?: AdminListenerSetup;
}

/**
 * One deployable service: its env schema (the only place its defaults live), what the runner
 * opens for it, and how it starts. `runModule` runs it as a process; `startModules` embeds
 * several in one process (all-in-one homeserver, test harness) with the same code.
 */
export interface ServiceModule<
  S extends z.ZodObject = z.ZodObject,
  St extends ModuleStorage | undefined = ModuleStorage | undefined,
  I extends ModuleInstance = ModuleInstance,
> {
  /** Lower-case name: `SERVICE_NAME` when embedded, the PGlite directory, the key of its address. */
  readonly name: string;
  /** The env schema: `serviceConfig({...}).extend({...})`. */
  readonly config: S;
  /** Serves gRPC through runService's server; `false` for a module with listeners of its own. */
  readonly grpc: boolean;
  readonly storage?: St;
  /** Maps the embedder's typed settings onto config keys; a key left undefined stays env's. */
  embed?(settings: EmbedSettings): Partial<z.output<S>>;
  /**
   * Builds the service, registering everything to release with `host.onShutdown` (released in
   * reverse order, after the gRPC server drained and the workers stopped); its background work
   * is returned as `workers`, which the runner starts.
   */
  create(host: ModuleHost<z.output<S> & BaseConfig, St>): Promise<I>;
}

/** A module of any config, storage and instance type (lists of modules). */
export type AnyServiceModule = ServiceModule<z.ZodObject, ModuleStorage | undefined, ModuleInstance>;

/** Declares a service module; only checks and infers its types. */
export function defineServiceModule<
  S extends z.ZodObject,
  const St extends ModuleStorage | undefined = undefined,
  I extends ModuleInstance = ModuleInstance,
>(module: ServiceModule<S, St, I>): ServiceModule<S, St, I> {
  return module;
}
