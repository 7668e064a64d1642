// The federated-RPC router: a request about this domain is served by the handler, one about
// another domain goes to the federation gateway's FederationProxyService (method path and the
// request bytes as the service received them) and the peer's answer or status comes back as is.
import { Metadata, status } from "@grpc/grpc-js";
import { auth, common, federation } from "@phoenix/proto";
import { errorDetail, InvalidArgumentError, NotFoundError, type RpcError } from "@phoenix/runtime/errors";
import { type FederatedUnaryOptions, FederationRouter, federatedUnary } from "@phoenix/runtime/federation";
import {
  createChannel,
  createServiceClient,
  defineService,
  GrpcCallError,
  type GrpcServer,
  startGrpcServer,
  type UnaryHandler,
  unary,
} from "@phoenix/runtime/grpc";
import { createLogger } from "@phoenix/runtime/log";
import { afterEach, describe, expect, it } from "vitest";

const config = {
  GRPC_HOST: "127.0.0.1",
  GRPC_PORT: 0,
  GRPC_MAX_MESSAGE_BYTES: 1 << 20,
  GRPC_DEFAULT_DEADLINE_MS: 5_000,
};
const logger = createLogger({ level: "silent", service: "router-test" });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(services: Parameters<typeof startGrpcServer>[0]["services"]): Promise<string> {
  const server: GrpcServer = await startGrpcServer({ services, config, logger });
  cleanups.push(() => server.shutdown({ graceMs: 100 }));
  return `127.0.0.1:${server.port}`;
}

/** A FederationProxyService that records requests and answers with `answer`. */
async function fakeGateway(answer: (request: federation.ProxyRequest) => Promise<federation.ProxyResponse>) {
  const seen: federation.ProxyRequest[] = [];
  const address = await serve([
    defineService(federation.FederationProxyServiceService, {
      proxy: unary(async (request: federation.ProxyRequest) => {
        seen.push(request);
        return answer(request);
      }),
    }),
  ]);
  return { address, seen };
}

const method = auth.AuthServiceService.getAsCredentials;

/** An empty GetAsCredentials answer naming `domain`. */
function credentials(domain: string): auth.GetAsCredentialsResponse {
  return { domain, asCredentials: [], asIntermediateCredentials: [], revokedFingerprints: [] };
}

/** The router of alpha.example, forwarding to `gateway` (none: remote requests are UNAVAILABLE). */
function alphaRouter(gateway?: { address: string }): FederationRouter {
  const router = new FederationRouter({ localDomain: "alpha.example", proxyAddress: gateway?.address });
  cleanups.push(() => router.close());
  return router;
}

/** Serves GetAsCredentials as a federated RPC routed by the request's domain; returns its client. */
async function serveFederated(
  router: FederationRouter,
  handler: UnaryHandler<auth.GetAsCredentialsRequest, auth.GetAsCredentialsResponse>,
  options?: FederatedUnaryOptions<auth.GetAsCredentialsRequest, auth.GetAsCredentialsResponse>,
) {
  const address = await serve([
    {
      name: "phoenix.auth.v1.AuthService",
      definition: { getAsCredentials: method },
      handlers: {
        getAsCredentials: federatedUnary(method, router, (request) => request.domain, handler, options),
      },
    },
  ]);
  const channel = createChannel(address);
  cleanups.push(() => channel.close());
  return createServiceClient({ getAsCredentials: method }, channel);
}

describe("FederationRouter", () => {
  it("serves local requests itself and forwards others with their bytes to the gateway", async () => {
    const remote: auth.GetAsCredentialsResponse = {
      ...credentials("beta.example"),
      asCredentials: [new Uint8Array([1, 2, 3])],
    };
    const gateway = await fakeGateway(async () => ({
      response: auth.GetAsCredentialsResponse.encode(remote).finish(),
    }));
    const served: string[] = [];
    const client = await serveFederated(alphaRouter(gateway), async (request) => {
      served.push(request.domain);
      return credentials("alpha.example");
    });

    expect((await client.getAsCredentials({ domain: "" })).domain).toBe("alpha.example");
    expect((await client.getAsCredentials({ domain: "alpha.example" })).domain).toBe("alpha.example");
    expect(served).toEqual(["", "alpha.example"]);
    expect(gateway.seen).toEqual([]);

    const answer = await client.getAsCredentials({ domain: "beta.example" });
    expect(answer.domain).toBe("beta.example");
    expect(new Uint8Array(answer.asCredentials[0] ?? [])).toEqual(new Uint8Array([1, 2, 3]));
    expect(served).toHaveLength(2);
    expect(gateway.seen).toHaveLength(1);
    const [proxied] = gateway.seen;
    expect(proxied?.destinationDomain).toBe("beta.example");
    expect(proxied?.method).toBe("/phoenix.auth.v1.AuthService/GetAsCredentials");
    expect(auth.GetAsCredentialsRequest.decode(proxied?.request ?? new Uint8Array()).domain).toBe(
      "beta.example",
    );
  });

  it("returns the peer's status, message and details unchanged", async () => {
    const gateway = await fakeGateway(async () => {
      throw new NotFoundError("user 1234@beta.example does not exist", {
        details: [
          errorDetail(
            common.ErrorDetail.fromPartial({ reason: common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER }),
          ),
        ],
      }) as RpcError;
    });
    const client = await serveFederated(alphaRouter(gateway), async () => {
      throw new Error("must not run");
    });
    const error = await client.getAsCredentials({ domain: "beta.example" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    const call = error as GrpcCallError;
    expect(call.code).toBe(status.NOT_FOUND);
    expect(call.statusMessage).toBe("user 1234@beta.example does not exist");
    expect(call.details).toHaveLength(1);
  });

  it("answers UNAVAILABLE for another domain when no gateway is configured", async () => {
    const client = await serveFederated(alphaRouter(), async () => credentials("alpha.example"));
    const error = (await client
      .getAsCredentials({ domain: "beta.example" })
      .catch((e: unknown) => e)) as GrpcCallError;
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.statusMessage).toContain("beta.example");
  });

  it("runs admit first for local and remote requests, and lets remote serve other domains", async () => {
    const gateway = await fakeGateway(async () => {
      throw new Error("must not be asked");
    });
    const admitted: string[] = [];
    const client = await serveFederated(alphaRouter(gateway), async () => credentials("alpha.example"), {
      admit: (request) => {
        if (request.domain === "limited.example") throw new NotFoundError("refused by admit");
        admitted.push(request.domain);
      },
      remote: async (destination) => credentials(`cached ${destination}`),
    });
    expect((await client.getAsCredentials({ domain: "" })).domain).toBe("alpha.example");
    expect((await client.getAsCredentials({ domain: "beta.example" })).domain).toBe("cached beta.example");
    const refused = (await client
      .getAsCredentials({ domain: "limited.example" })
      .catch((e: unknown) => e)) as GrpcCallError;
    expect(refused.code).toBe(status.NOT_FOUND);
    expect(admitted).toEqual(["", "beta.example"]);
    expect(gateway.seen).toEqual([]);
  });

  it("refuses a malformed destination domain with INVALID_ARGUMENT without asking the gateway", async () => {
    const gateway = await fakeGateway(async () => ({ response: new Uint8Array() }));
    const error = await alphaRouter(gateway)
      .forward(method, "Not A Domain", { domain: "Not A Domain" }, {
        signal: new AbortController().signal,
      } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toContain("Not A Domain");
    expect(gateway.seen).toEqual([]);
  });

  it("never forwards again a request a peer forwarded about a third domain", async () => {
    const gateway = await fakeGateway(async () => ({ response: new Uint8Array() }));
    const client = await serveFederated(alphaRouter(gateway), async () => credentials("alpha.example"));
    const metadata = new Metadata();
    metadata.set("phoenix-origin-domain", "beta.example");
    expect((await client.getAsCredentials({ domain: "alpha.example" }, { metadata })).domain).toBe(
      "alpha.example",
    );
    const error = (await client
      .getAsCredentials({ domain: "gamma.example" }, { metadata })
      .catch((e: unknown) => e)) as GrpcCallError;
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.statusMessage).toContain("gamma.example");
    expect(gateway.seen).toEqual([]);
  });
});
