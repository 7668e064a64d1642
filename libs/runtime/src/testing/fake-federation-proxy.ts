import { federation } from "@phoenix/proto";
import { defineService, type GrpcServer, startGrpcServer, unary } from "../grpc/index.js";
import { createLogger } from "../log/index.js";

/** A request a service sent to the {@link FakeFederationProxy}. */
export interface ProxiedCall {
  destination: string;
  /** Full gRPC path, `/phoenix.auth.v1.AuthService/GetAsCredentials`. */
  method: string;
  /** The request bytes as the service sent them. */
  request: Uint8Array;
}

/**
 * A stand-in for the federation gateway's internal FederationProxyService on 127.0.0.1: records
 * every Proxy call and answers with `answer` (return the response bytes, or throw an RpcError
 * for a status). For service tests of forwarded requests.
 */
export class FakeFederationProxy {
  readonly calls: ProxiedCall[] = [];
  /** How the next calls are answered (replace it between steps). */
  answer: (call: ProxiedCall) => Promise<Uint8Array> = async () => new Uint8Array();

  private constructor(private readonly server: GrpcServer) {}

  /** Starts one on a free loopback port. */
  static async start(): Promise<FakeFederationProxy> {
    let proxy: FakeFederationProxy | undefined;
    const server = await startGrpcServer({
      services: [
        defineService(federation.FederationProxyServiceService, {
          proxy: unary(async (request: federation.ProxyRequest) => {
            if (proxy === undefined) throw new Error("not started");
            const call: ProxiedCall = {
              destination: request.destinationDomain,
              method: request.method,
              request: new Uint8Array(request.request),
            };
            proxy.calls.push(call);
            return { response: await proxy.answer(call) };
          }),
        }),
      ],
      config: {
        GRPC_HOST: "127.0.0.1",
        GRPC_PORT: 0,
        GRPC_MAX_MESSAGE_BYTES: 4 << 20,
        GRPC_DEFAULT_DEADLINE_MS: 10_000,
      },
      logger: createLogger({ level: "silent", service: "fake-federation-proxy" }),
    });
    proxy = new FakeFederationProxy(server);
    return proxy;
  }

  /** `127.0.0.1:port` (FEDERATION_PROXY_ADDRESS). */
  get address(): string {
    return `127.0.0.1:${this.server.port}`;
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.server.shutdown({ graceMs: 100 });
  }
}
