// The operator admin listener a module may serve besides its public gRPC listener, and the one
// way its RPCs authenticate operators: requests signed with an Ed25519 key the operator configured.
import { VerifyingKey } from "@phoenix/crypto";
import { common, type MessageDecoder } from "@phoenix/proto";
import { z } from "zod";
import type { BaseConfig } from "../config/base-config.js";
import { envDuration, envList, envPort, envString } from "../config/fields.js";
import { unauthenticatedFor } from "../errors/phoenix-detail.js";
import type { RpcError } from "../errors/rpc-errors.js";
import { GrpcServer } from "../grpc/grpc-server.js";
import type { ServiceRegistration } from "../grpc/handlers.js";
import type { ServiceRuntime } from "../lifecycle/run-service.js";
import type { Logger } from "../log/create-logger.js";
import {
  type AuthenticatedSignedRequest,
  authenticateSignedRequest,
  type SignedRequestPolicy,
  type SignerKey,
  type TbsWithHeader,
} from "../signed-request/authenticator.js";

const Reason = common.ErrorReason;

/**
 * The admin listener's variables, spread into the config schema of a module that serves admin
 * RPCs. The listener is off while ADMIN_GRPC_PORT is unset (embedded modules get a free loopback
 * port); it must never be published through an ingress, the edge or the federation gateway.
 */
export const adminListenerConfig = z.object({
  /** Where the admin listener binds; loopback by default (`kubectl exec` / a Job in the pod's network). */
  ADMIN_GRPC_HOST: envString({ default: "127.0.0.1" }),
  /** The admin listener's port; unset: no admin listener. */
  ADMIN_GRPC_PORT: envPort({ optional: true }),
  /**
   * Operator public keys, comma-separated `name:base64url-ed25519-public-key`. Empty: every admin
   * call is refused (UNAUTHENTICATED).
   */
  ADMIN_OPERATOR_KEYS: envList({ default: [] }),
  /**
   * How long an admin_audit row is kept (default 400 days: a year of audits and a month's margin);
   * the service's periodic sweep deletes older rows.
   */
  ADMIN_AUDIT_RETENTION: envDuration({ default: 400 * 24 * 3600_000, min: 24 * 3600_000 }),
});

/** The admin listener's parsed variables. */
export type AdminListenerConfig = z.output<typeof adminListenerConfig>;

/** ADMIN_OPERATOR_KEYS holds an entry that is not `name:base64url-public-key`. */
export class OperatorKeyConfigError extends Error {
  override readonly name = "OperatorKeyConfigError";
}

const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Parses ADMIN_OPERATOR_KEYS into verifying keys by operator name; names must be unique. */
export function parseOperatorKeys(entries: readonly string[]): ReadonlyMap<string, VerifyingKey> {
  const keys = new Map<string, VerifyingKey>();
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(":");
    const name = colon < 0 ? "" : entry.slice(0, colon);
    if (!OPERATOR_NAME.test(name)) {
      throw new OperatorKeyConfigError(
        `ADMIN_OPERATOR_KEYS entry ${i + 1}: expected name:base64url-public-key with a name of letters, digits, '.', '_' or '-'`,
      );
    }
    if (keys.has(name))
      throw new OperatorKeyConfigError(`ADMIN_OPERATOR_KEYS names operator "${name}" twice`);
    let key: VerifyingKey;
    try {
      const text = entry.slice(colon + 1);
      if (!/^[A-Za-z0-9_-]{43}=?$/.test(text)) throw new Error("not base64url of 32 bytes");
      const bytes = new Uint8Array(Buffer.from(text, "base64url"));
      key = VerifyingKey.fromBytes(bytes);
    } catch {
      throw new OperatorKeyConfigError(
        `ADMIN_OPERATOR_KEYS entry "${name}": not a base64url Ed25519 public key (32 bytes)`,
      );
    }
    keys.set(name, key);
  });
  return keys;
}

/** An operator request's `…Tbs`: the header (sender unset) and the operator's name. */
export type OperatorTbs = TbsWithHeader & { operator: string };

/** The key of the operator a request names. */
export interface OperatorSigner extends SignerKey {
  readonly operator: string;
}

/**
 * Authenticates an operator request with the signed-request authenticator: header (sender
 * unset, the RPC's label, replay window), the key `tbs.operator` names in `keys`, its signature;
 * the request id is claimed under the operator's name. Unknown operator and bad signature are
 * UNAUTHENTICATED naming the problem. Run `claim` in the call's transaction.
 */
export function authenticateOperator<T extends OperatorTbs, Tx>(
  policy: SignedRequestPolicy<Tx>,
  keys: ReadonlyMap<string, VerifyingKey>,
  request: { signed: common.Signed | undefined; type: MessageDecoder<T>; method: { path: string } },
): Promise<AuthenticatedSignedRequest<T, OperatorSigner, Tx>> {
  return authenticateSignedRequest(
    {
      ...policy,
      checkSender(header) {
        if (header.sender !== undefined) {
          throw unauthenticatedFor(
            Reason.ERROR_REASON_UNKNOWN_SENDER,
            `header sender must be unset in an operator request, got ${header.sender.$case}`,
          );
        }
      },
      refusals: {
        ...policy.refusals,
        badSignature: (signer) =>
          unauthenticatedFor(Reason.ERROR_REASON_BAD_SIGNATURE, `signature of ${signer} does not verify`),
      },
    },
    request,
    (tbs) => {
      const name = tbs.operator;
      const key = keys.get(name);
      if (key === undefined) {
        throw unauthenticatedFor(
          Reason.ERROR_REASON_UNKNOWN_SENDER,
          name === ""
            ? "operator request names no operator"
            : `unknown operator "${name.slice(0, 64)}" (not in ADMIN_OPERATOR_KEYS)`,
        );
      }
      return {
        signer: `operator "${name}"`,
        key: [key],
        replayScope: [new TextEncoder().encode("operator"), new TextEncoder().encode(name)],
        operator: name,
      };
    },
  );
}

/** What a module returns to have the runner serve admin RPCs. */
export interface AdminListenerSetup {
  readonly services: readonly ServiceRegistration[];
  /** See `CreateGrpcServerOptions.translateError`. */
  readonly translateError?: (error: unknown) => RpcError | undefined;
}

/**
 * Starts the admin listener on ADMIN_GRPC_HOST:ADMIN_GRPC_PORT when the port is set, registered
 * with `onShutdown` (drained within SHUTDOWN_GRACE_MS). Returns its port, or undefined when off.
 */
export async function startAdminListener(
  runtime: ServiceRuntime<BaseConfig & Partial<AdminListenerConfig>>,
  moduleName: string,
  setup: AdminListenerSetup,
): Promise<number | undefined> {
  const { config } = runtime;
  const listener = await openAdminListener(config, runtime.logger, moduleName, setup);
  if (listener === undefined) return undefined;
  runtime.onShutdown(async () => {
    await listener.server.shutdown({ graceMs: config.SHUTDOWN_GRACE_MS });
  }, "admin listener");
  return listener.port;
}

/**
 * The admin listener `config` asks for, started with `setup`'s services: undefined when
 * ADMIN_GRPC_PORT is unset. The caller shuts it down. A module whose config lacks
 * adminListenerConfig but returns admin services is a wiring mistake (TypeError).
 */
export async function openAdminListener(
  config: BaseConfig & Partial<AdminListenerConfig>,
  logger: Logger,
  moduleName: string,
  setup: AdminListenerSetup,
): Promise<{ server: GrpcServer; port: number } | undefined> {
  if (!("ADMIN_GRPC_HOST" in config)) {
    // Admin services nobody would serve: a wiring mistake, not something to start without.
    throw new TypeError(
      `module ${moduleName} returned admin services but its config schema lacks adminListenerConfig`,
    );
  }
  if (config.ADMIN_GRPC_PORT === undefined) {
    logger.info("admin listener off (ADMIN_GRPC_PORT unset)");
    return undefined;
  }
  const server = new GrpcServer({
    services: setup.services,
    config: {
      ...config,
      GRPC_HOST: config.ADMIN_GRPC_HOST ?? "127.0.0.1",
      GRPC_PORT: config.ADMIN_GRPC_PORT,
    },
    logger: logger.child({ listener: "admin" }),
    ...(setup.translateError ? { translateError: setup.translateError } : {}),
  });
  return { server, port: await server.start() };
}
