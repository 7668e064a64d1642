import type { Client } from "@grpc/grpc-js";
import { isValidDomain } from "@phoenix/crypto";
import { FederationProxyServiceDefinition } from "@phoenix/proto";
import {
  createChannel,
  createServiceClient,
  GrpcCallError,
  type MethodDefinitionLike,
  type RequestOf,
  type ResponseOf,
  type ServiceClient,
} from "@phoenix/wire";
import { PassthroughStatusError } from "../errors/passthrough.js";
import { InvalidArgumentError, UnavailableError } from "../errors/rpc-errors.js";
import { type CallContext, type UnaryHandler, type UnaryRpc, unary } from "../grpc/handlers.js";
import { ORIGIN_DOMAIN_KEY } from "../rate-limit/caller-address.js";

/** A method definition with the serializers every ts-proto/grpc-js definition has. */
type SerializingMethod = MethodDefinitionLike & {
  requestSerialize(value: never): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
};

export interface FederationRouterOptions {
  /** This homeserver's domain: requests about it are served locally. */
  localDomain: string;
  /**
   * `host:port` of the federation gateway's internal FederationProxyService listener; may be
   * given later with {@link FederationRouter.connect} (the all-in-one homeserver starts the
   * gateway after the services). Without it, requests for other domains are UNAVAILABLE.
   */
  proxyAddress?: string | undefined;
  /** Largest message sent or received (the service's `GRPC_MAX_MESSAGE_BYTES`). */
  maxMessageBytes?: number;
}

/**
 * Sends a client's request that concerns another domain (its group, user or handle) through
 * this homeserver's federation gateway to that domain's service, and returns the answer as if
 * served here: the response, or the remote status unchanged (code, message, details). The
 * request travels re-encoded from the decoded message; every signature in it covers bytes
 * carried as `bytes` fields (`Signed.tbs`), so it verifies on the other side.
 */
export class FederationRouter {
  readonly localDomain: string;
  private readonly maxMessageBytes: number | undefined;
  private channel: Client | undefined;
  private client: ServiceClient<FederationProxyServiceDefinition> | undefined;

  constructor(options: FederationRouterOptions) {
    this.localDomain = options.localDomain;
    this.maxMessageBytes = options.maxMessageBytes;
    if (options.proxyAddress) this.connect(options.proxyAddress);
  }

  /** Points the router at the gateway's internal listener (replacing an earlier address). */
  connect(proxyAddress: string): void {
    this.channel?.close();
    this.channel = createChannel(
      proxyAddress,
      this.maxMessageBytes === undefined ? {} : { maxMessageBytes: this.maxMessageBytes },
    );
    this.client = createServiceClient(FederationProxyServiceDefinition, this.channel);
  }

  /** True when `domain` names another homeserver (empty means this one). */
  isRemote(domain: string): boolean {
    return domain !== "" && domain !== this.localDomain;
  }

  /** Forwards `request` for `method` to `destination` and returns its answer (see the class doc). */
  async forward<M extends SerializingMethod>(
    method: M,
    destination: string,
    request: RequestOf<M>,
    ctx: CallContext,
  ): Promise<ResponseOf<M>> {
    if (!isValidDomain(destination)) {
      throw new InvalidArgumentError(`destination domain "${destination}" is not a lower-case DNS name`);
    }
    const client = this.client;
    if (client === undefined) {
      throw new UnavailableError(
        `${destination} is another homeserver and this one has no federation gateway configured`,
      );
    }
    const bytes = new Uint8Array(method.requestSerialize(request as never));
    try {
      const answer = await client.proxy(
        { destinationDomain: destination, method: method.path, request: bytes },
        { parent: ctx },
      );
      return method.responseDeserialize(Buffer.from(answer.response)) as ResponseOf<M>;
    } catch (error) {
      if (error instanceof GrpcCallError) {
        throw new PassthroughStatusError(error.code, error.statusMessage, error.details);
      }
      throw error;
    }
  }

  /** Closes the channel to the gateway. */
  close(): void {
    this.channel?.close();
    this.channel = undefined;
    this.client = undefined;
  }
}

/** Optional hooks of {@link federatedUnary}. */
export interface FederatedUnaryOptions<Req, Res> {
  /**
   * Runs first, for local and remote requests alike: per-caller rate limits, so a local client
   * cannot spend a peer's budget for this whole domain (the peer limits forwarded calls per
   * origin domain).
   */
  admit?: (request: Req, ctx: CallContext) => void | Promise<void>;
  /**
   * Serves a request for another domain instead of a plain {@link FederationRouter.forward}
   * (e.g. from a cache that calls `forward` itself when needed).
   */
  remote?: (destination: string, request: Req, ctx: CallContext) => Promise<Res>;
}

/**
 * A unary RPC whose request may concern another domain: when `destinationOf(request)` names
 * another homeserver the request is forwarded through `router` (or given to `options.remote`)
 * and `handler` never runs; otherwise `handler` serves it. `destinationOf` runs before either,
 * so it must only read (and may validate) the field that names the domain; `options.admit` runs
 * before `destinationOf`. A request forwarded by a peer (`phoenix-origin-domain`) about a third
 * domain is refused INVALID_ARGUMENT, never forwarded again.
 */
export function federatedUnary<M extends SerializingMethod>(
  method: M,
  router: FederationRouter,
  destinationOf: (request: RequestOf<M>) => string,
  handler: UnaryHandler<RequestOf<M>, ResponseOf<M>>,
  options: FederatedUnaryOptions<RequestOf<M>, ResponseOf<M>> = {},
): UnaryRpc<RequestOf<M>, ResponseOf<M>> {
  return unary(async (request, ctx) => {
    await options.admit?.(request, ctx);
    const destination = destinationOf(request);
    if (!router.isRemote(destination)) return handler(request, ctx);
    // A request a peer homeserver forwarded must be about this domain: relaying it on would make
    // this homeserver an open proxy between other domains (and could loop).
    const origin = ctx.metadata.get(ORIGIN_DOMAIN_KEY)[0];
    if (origin !== undefined) {
      throw new InvalidArgumentError(
        `a request forwarded from ${String(origin)} must be about ${router.localDomain}, not ${destination}`,
      );
    }
    if (options.remote) return options.remote(destination, request, ctx);
    return router.forward(method, destination, request, ctx);
  });
}

/**
 * The router of a service: `injected` when the embedder hands one in (the all-in-one
 * homeserver shares one and closes it itself), else one built from the service's
 * configuration, which the service closes on shutdown (`owned`).
 */
export function serviceFederationRouter(
  config: { FEDERATION_PROXY_ADDRESS?: string | undefined; GRPC_MAX_MESSAGE_BYTES?: number },
  localDomain: string,
  injected?: FederationRouter,
): { router: FederationRouter; owned: boolean } {
  if (injected) return { router: injected, owned: false };
  const router = new FederationRouter({
    localDomain,
    proxyAddress: config.FEDERATION_PROXY_ADDRESS,
    ...(config.GRPC_MAX_MESSAGE_BYTES === undefined
      ? {}
      : { maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES }),
  });
  return { router, owned: true };
}
