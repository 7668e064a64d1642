import type { Client } from "@grpc/grpc-js";
import { federation } from "@phoenix/proto";
import { PassthroughStatusError } from "../errors/passthrough.js";
import { UnavailableError } from "../errors/rpc-errors.js";
import type { MethodDefinitionLike, RequestOf, ResponseOf } from "../grpc/definitions.js";
import { type CallContext, type UnaryHandler, type UnaryRpc, unary } from "../grpc/handlers.js";
import {
  createChannel,
  createServiceClient,
  GrpcCallError,
  type ServiceClient,
} from "../grpc/service-client.js";

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
  private client: ServiceClient<typeof federation.FederationProxyServiceService> | undefined;

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
    this.client = createServiceClient(federation.FederationProxyServiceService, this.channel);
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

/**
 * A unary RPC whose request may concern another domain: when `destinationOf(request)` names
 * another homeserver the request is forwarded through `router` and `handler` never runs;
 * otherwise `handler` serves it. `destinationOf` runs first, so it must only read (and may
 * validate) the field that names the domain.
 */
export function federatedUnary<M extends SerializingMethod>(
  method: M,
  router: FederationRouter,
  destinationOf: (request: RequestOf<M>) => string,
  handler: UnaryHandler<RequestOf<M>, ResponseOf<M>>,
): UnaryRpc<RequestOf<M>, ResponseOf<M>> {
  return unary(async (request, ctx) => {
    const destination = destinationOf(request);
    if (router.isRemote(destination)) return router.forward(method, destination, request, ctx);
    return handler(request, ctx);
  });
}
