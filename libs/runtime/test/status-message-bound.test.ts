// A refusal whose message echoes client input (a domain, a label) must still reach the client:
// gRPC carries the message in the trailers, and an unbounded one (found by the RPC fuzzer with a
// 1 MB group domain) never arrived — the call hung until its deadline and the HTTP/2 connection,
// which the edge gateway shares between all clients, broke for every other call on it.
import { status } from "@grpc/grpc-js";
import { InvalidArgumentError, malformedField } from "@phoenix/runtime/errors";
import {
  bidiStreaming,
  clientStreaming,
  createChannel,
  createServiceClient,
  defineService,
  GrpcCallError,
  serverStreaming,
  startGrpcServer,
  unary,
} from "@phoenix/runtime/grpc";
import { createLogger } from "@phoenix/runtime/log";
import { createMetrics } from "@phoenix/runtime/metrics";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EchoServiceDefinition, echoRequest } from "./fixtures/echo-contract.js";

let server: Awaited<ReturnType<typeof startGrpcServer>>;
let client: ReturnType<typeof createServiceClient<typeof EchoServiceDefinition>>;
let close: () => void;

beforeAll(async () => {
  server = await startGrpcServer({
    services: [
      defineService(EchoServiceDefinition, {
        echo: unary(async (request) => {
          const text = new TextDecoder().decode(request.payload);
          if (request.failWith === "INVALID_ARGUMENT")
            throw new InvalidArgumentError(`group of domain "${text}" is not served here`);
          if (request.failWith === "FIELD") throw malformedField("tbs.label", `"${text}" is not the label`);
          return { payload: request.payload, seq: 1 };
        }),
        echoStream: serverStreaming(async () => undefined),
        collect: clientStreaming(async () => ({ payload: new Uint8Array(), seq: 0 })),
        chat: bidiStreaming(async () => undefined),
      }),
    ],
    config: {
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: 0,
      GRPC_MAX_MESSAGE_BYTES: 4 * 1024 * 1024,
      GRPC_DEFAULT_DEADLINE_MS: 30_000,
    },
    logger: createLogger({ service: "bound-test", level: "silent" }),
    metrics: createMetrics({ service: "bound-test", defaultMetrics: false }),
  });
  const channel = createChannel(`127.0.0.1:${server.port}`, { maxMessageBytes: 4 * 1024 * 1024 });
  client = createServiceClient(EchoServiceDefinition, channel, { defaultDeadlineMs: 10_000 });
  close = () => channel.close();
});

afterAll(async () => {
  close?.();
  await server?.shutdown({ graceMs: 0 });
});

async function refusal(failWith: string, payload: Uint8Array): Promise<GrpcCallError> {
  try {
    await client.echo(echoRequest({ payload, failWith }));
  } catch (error) {
    if (error instanceof GrpcCallError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

it.each(["INVALID_ARGUMENT", "FIELD"])(
  "a %s refusal echoing 1 MB of input arrives as INVALID_ARGUMENT with a bounded message",
  async (failWith) => {
    const error = await refusal(failWith, new Uint8Array(1024 * 1024).fill(7));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.statusMessage.length).toBeLessThanOrEqual(1100);
    expect(error.statusMessage).toMatch(/truncated/);
    // The connection survived: an ordinary call on the same channel succeeds.
    const ok = await client.echo(echoRequest({ payload: new Uint8Array([1, 2, 3]) }));
    expect([...ok.payload]).toEqual([1, 2, 3]);
  },
);
