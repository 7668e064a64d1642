import { Writable } from "node:stream";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type Client, Metadata, status } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import {
  CancelledError,
  DeadlineExceededError,
  INTERNAL_ERROR_MESSAGE,
  type RpcError,
  UnauthenticatedError,
} from "@phoenix/runtime/errors";
import {
  type CallContext,
  createChannel,
  createServiceClient,
  defineService,
  type GrpcServer,
  type GrpcServerConfig,
  ServiceDefinitionError,
  startGrpcServer,
  unary,
} from "@phoenix/runtime/grpc";
import { createLogger } from "@phoenix/runtime/log";
import { createMetrics, type Metrics } from "@phoenix/runtime/metrics";
import { afterEach, describe, expect, it } from "vitest";
import { callFailure } from "../src/testing/call-failure.js";
import {
  ECHO_PROTO_DIR,
  ECHO_PROTO_FILE,
  ECHO_SERVICE_NAME,
  type EchoRequest,
  EchoServiceDefinition,
  echoRequest,
} from "./fixtures/echo-contract.js";
import { type EchoHooks, echoService } from "./fixtures/echo-handlers.js";
import {
  healthCheck,
  parseMetrics,
  reflectedServices,
  reflectionDescribes,
  sampleValue,
} from "./support/probes.js";

type LogLine = Record<string, unknown>;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  server: GrpcServer;
  channel: Client;
  client: ReturnType<typeof createServiceClient<typeof EchoServiceDefinition>>;
  metrics: Metrics;
  logs: LogLine[];
}

async function startEcho(
  options: {
    config?: Partial<GrpcServerConfig>;
    hooks?: EchoHooks;
    clientDeadlineMs?: number | null;
    translateError?: (error: unknown) => RpcError | undefined;
  } = {},
): Promise<Harness> {
  const logs: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const logger = createLogger({ service: "echo-test", level: "trace", destination });
  const metrics = createMetrics({ service: "echo-test", defaultMetrics: false });
  const server = await startGrpcServer({
    services: [echoService(options.hooks)],
    config: {
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: 0,
      GRPC_MAX_MESSAGE_BYTES: 64 * 1024,
      GRPC_DEFAULT_DEADLINE_MS: 30_000,
      ...options.config,
    },
    logger,
    metrics,
    reflection: { protoFiles: [ECHO_PROTO_FILE], includeDirs: [ECHO_PROTO_DIR] },
    ...(options.translateError ? { translateError: options.translateError } : {}),
  });
  const channel = createChannel(`127.0.0.1:${server.port}`);
  const client = createServiceClient(EchoServiceDefinition, channel, {
    defaultDeadlineMs: options.clientDeadlineMs === undefined ? 10_000 : options.clientDeadlineMs,
  });
  cleanups.push(async () => {
    channel.close();
    await server.shutdown({ graceMs: 0 });
  });
  return { server, channel, client, metrics, logs };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Resolves with the first abort reason a handler reports. */
function abortProbe(): { hooks: EchoHooks; reason: Promise<unknown>; started: Promise<CallContext> } {
  let onAbort: (reason: unknown) => void = () => {};
  let onStart: (ctx: CallContext) => void = () => {};
  const reason = new Promise<unknown>((resolve) => {
    onAbort = resolve;
  });
  const started = new Promise<CallContext>((resolve) => {
    onStart = resolve;
  });
  return {
    hooks: { onAbort: (r) => onAbort(r), onStart: (_req: EchoRequest, ctx) => onStart(ctx) },
    reason,
    started,
  };
}

describe("gRPC server helpers", () => {
  it("serves all four handler kinds with bytes payloads", async () => {
    const { client } = await startEcho();
    const payload = new Uint8Array([0, 1, 2, 254, 255]);

    const unaryReply = await client.echo(echoRequest({ payload }));
    expect(hex(unaryReply.payload)).toBe(hex(payload));

    const streamed = [];
    for await (const reply of client.echoStream(echoRequest({ payload, repeat: 3 })))
      streamed.push(reply.seq);
    expect(streamed).toEqual([1, 2, 3]);

    const collected = await client.collect([
      echoRequest({ payload: new Uint8Array([1]) }),
      echoRequest({ payload: new Uint8Array([2, 3]) }),
    ]);
    expect(hex(collected.payload)).toBe("010203");
    expect(collected.seq).toBe(2);

    const chat = client.chat();
    await chat.send(echoRequest({ payload: new Uint8Array([7]) }));
    await chat.send(echoRequest({ payload: new Uint8Array([8]) }));
    chat.end();
    const replies = [];
    for await (const reply of chat.responses) replies.push(`${reply.seq}:${hex(reply.payload)}`);
    expect(replies).toEqual(["1:07", "2:08"]);
  });

  it("keeps the message and details of known errors", async () => {
    const { client } = await startEcho();
    const notFound = await callFailure(client.echo(echoRequest({ failWith: "NOT_FOUND" })));
    expect(notFound.code).toBe(status.NOT_FOUND);
    expect(notFound.statusMessage).toBe("no such echo");

    const precondition = await callFailure(client.echo(echoRequest({ failWith: "FAILED_PRECONDITION" })));
    expect(precondition.code).toBe(status.FAILED_PRECONDITION);
    expect(precondition.details).toEqual([
      { typeUrl: "type.googleapis.com/phoenix.test.echo.v1.EchoResponse", value: new Uint8Array([16, 7]) },
    ]);

    const streamError = await callFailure(
      (async () => {
        for await (const _ of client.echoStream(echoRequest({ failWith: "INVALID_ARGUMENT", repeat: 2 }))) {
          // no messages expected
        }
      })(),
    );
    expect(streamError.code).toBe(status.INVALID_ARGUMENT);
    expect(streamError.statusMessage).toBe("payload is not acceptable");
  });

  it("turns unexpected errors into INTERNAL without leaking them; the log has the details", async () => {
    const { client, logs } = await startEcho();
    const error = await callFailure(client.echo(echoRequest({ failWith: "BUG" })));
    expect(error.code).toBe(status.INTERNAL);
    expect(error.statusMessage).toBe(INTERNAL_ERROR_MESSAGE);
    expect(error.message).not.toContain("hunter2");
    const logged = logs.find((l) => l.msg === "rpc handler failed");
    expect(JSON.stringify(logged?.err)).toContain("BUG in echo");
    expect(logged?.rpc).toBe("/phoenix.test.echo.v1.EchoService/Echo");
  });

  it("maps library errors through the server's translateError", async () => {
    const { client } = await startEcho({
      translateError: (error) =>
        error instanceof Error && error.message.startsWith("BUG in echo")
          ? new UnauthenticatedError("signature does not verify")
          : undefined,
    });
    const error = await callFailure(client.echo(echoRequest({ failWith: "BUG" })));
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.statusMessage).toBe("signature does not verify");
    expect((await callFailure(client.echo(echoRequest({ failWith: "NOT_FOUND" })))).code).toBe(
      status.NOT_FOUND,
    );
  });

  it("answers undecodable requests with INVALID_ARGUMENT", async () => {
    const { channel, client } = await startEcho();
    const code = await new Promise<number>((resolve) => {
      channel.makeUnaryRequest(
        EchoServiceDefinition.echo.path,
        () => Buffer.from([0x0f, 0x01]), // field 1 with the invalid wire type 7
        (b: Buffer) => b,
        {},
        new Metadata(),
        { deadline: Date.now() + 5000 },
        (err) => resolve(err?.code ?? status.OK),
      );
    });
    expect(code).toBe(status.INVALID_ARGUMENT);
    expect((await client.echo(echoRequest({ payload: new Uint8Array([1]) }))).seq).toBe(1);
  });

  it("refuses an oversized request with RESOURCE_EXHAUSTED, counts it, and keeps serving", async () => {
    const { client, metrics } = await startEcho({ config: { GRPC_MAX_MESSAGE_BYTES: 16 * 1024 } });
    const error = await callFailure(client.echo(echoRequest({ payload: new Uint8Array(32 * 1024) })));
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    const ok = await client.echo(echoRequest({ payload: new Uint8Array(1024) }));
    expect(ok.payload.length).toBe(1024);
    const samples = parseMetrics(await metrics.registry.metrics());
    const labels = { grpc_service: ECHO_SERVICE_NAME, grpc_method: "Echo" };
    expect(
      sampleValue(samples, "grpc_server_handled_total", { ...labels, grpc_code: "RESOURCE_EXHAUSTED" }),
    ).toBe(1);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...labels, grpc_code: "OK" })).toBe(1);
  });

  it("aborts the handler's signal when the client deadline passes", async () => {
    const probe = abortProbe();
    const { client } = await startEcho({ hooks: probe.hooks });
    const error = await callFailure(client.echo(echoRequest({ delayMs: 60_000 }), { deadlineMs: 500 }));
    expect(error.code).toBe(status.DEADLINE_EXCEEDED);
    expect(await probe.reason).toBeInstanceOf(DeadlineExceededError);
  });

  it("applies the server default deadline when the client sent none", async () => {
    const probe = abortProbe();
    const { client } = await startEcho({
      hooks: probe.hooks,
      config: { GRPC_DEFAULT_DEADLINE_MS: 200 },
      clientDeadlineMs: null,
    });
    const error = await callFailure(client.echo(echoRequest({ delayMs: 60_000 })));
    expect(error.code).toBe(status.DEADLINE_EXCEEDED);
    expect(await probe.reason).toBeInstanceOf(DeadlineExceededError);
    const ctx = await probe.started;
    expect(ctx.deadline).toBeInstanceOf(Date);
  });

  it("aborts the handler's signal when the client cancels", async () => {
    const probe = abortProbe();
    const { client } = await startEcho({ hooks: probe.hooks });
    const controller = new AbortController();
    const call = client.echo(echoRequest({ delayMs: 60_000 }), { signal: controller.signal });
    await probe.started;
    controller.abort();
    expect((await callFailure(call)).code).toBe(status.CANCELLED);
    expect(await probe.reason).toBeInstanceOf(CancelledError);
  });

  it("binds the client's request id to the context and the access log", async () => {
    const probe = abortProbe();
    const { client, logs } = await startEcho({ hooks: probe.hooks });
    const metadata = new Metadata();
    metadata.set("x-request-id", "req-123");
    await client.echo(echoRequest(), { metadata });
    expect((await probe.started).requestId).toBe("req-123");
    expect(logs.find((l) => l.msg === "rpc finished" && l["x-request-id"] === "req-123")).toMatchObject({
      code: "OK",
      rpc: "/phoenix.test.echo.v1.EchoService/Echo",
    });
  });

  it("propagates a parent call's deadline, cancellation and request id to outgoing calls", async () => {
    const probe = abortProbe();
    const { client } = await startEcho({ hooks: probe.hooks });
    const parentAbort = new AbortController();
    // The parts of a server call's context an outgoing call reads.
    const parent = {
      requestId: "outer-1",
      deadline: new Date(Date.now() + 60_000),
      signal: parentAbort.signal,
    } as unknown as CallContext;
    const call = callFailure(client.echo(echoRequest({ delayMs: 60_000 }), { parent }));
    expect((await probe.started).requestId).toBe("outer-1");
    parentAbort.abort();
    expect((await call).code).toBe(status.CANCELLED);
    expect(await probe.reason).toBeInstanceOf(CancelledError);

    const expired = { ...parent, deadline: new Date(Date.now() + 300), signal: new AbortController().signal };
    const late = await callFailure(
      client.echo(echoRequest({ delayMs: 60_000 }), { parent: expired, deadlineMs: 60_000 }),
    );
    expect(late.code).toBe(status.DEADLINE_EXCEEDED);
  });

  it("reports health per service and overall, and lists services by reflection", async () => {
    const { server, channel } = await startEcho();
    expect(await healthCheck(channel, "")).toBe("SERVING");
    expect(await healthCheck(channel, ECHO_SERVICE_NAME)).toBe("SERVING");
    await expect(healthCheck(channel, "no.such.Service")).rejects.toMatchObject({ code: status.NOT_FOUND });
    server.setHealth("NOT_SERVING", ECHO_SERVICE_NAME);
    expect(await healthCheck(channel, ECHO_SERVICE_NAME)).toBe("NOT_SERVING");
    expect(await healthCheck(channel, "")).toBe("SERVING");

    const address = `127.0.0.1:${server.port}`;
    expect(await reflectedServices(address)).toEqual(["grpc.health.v1.Health", ECHO_SERVICE_NAME]);
    expect(await reflectionDescribes(address, "phoenix.test.echo.v1.EchoRequest")).toBe(true);
  });

  it("serves reflection from an encoded FileDescriptorSet, listing only the services it serves", async () => {
    // A FileDescriptorSet is `repeated FileDescriptorProto file = 1`; build one from the proto.
    const definition = loadSync(ECHO_PROTO_FILE, { includeDirs: [ECHO_PROTO_DIR] });
    const files = (definition["phoenix.test.echo.v1.EchoRequest"] as { fileDescriptorProtos: Buffer[] })
      .fileDescriptorProtos;
    const writer = new BinaryWriter();
    for (const file of files) writer.tag(1, WireType.LengthDelimited).bytes(file);
    const logger = createLogger({ service: "echo-test", level: "silent" });
    const server = await startGrpcServer({
      services: [echoService()],
      config: {
        GRPC_HOST: "127.0.0.1",
        GRPC_PORT: 0,
        GRPC_MAX_MESSAGE_BYTES: 65536,
        GRPC_DEFAULT_DEADLINE_MS: 1000,
      },
      logger,
      reflection: { descriptorSet: writer.finish() },
    });
    cleanups.push(() => server.shutdown({ graceMs: 0 }).then(() => {}));
    const address = `127.0.0.1:${server.port}`;
    expect(await reflectedServices(address)).toEqual(["grpc.health.v1.Health", ECHO_SERVICE_NAME]);
    expect(await reflectionDescribes(address, `${ECHO_SERVICE_NAME}.Chat`)).toBe(true);
  });

  it("drains unary calls on shutdown but aborts streams at once, and refuses new calls", async () => {
    const started: string[] = [];
    let unaryStarted: () => void = () => {};
    let streamStarted: () => void = () => {};
    const bothStarted = Promise.all([
      new Promise<void>((r) => {
        unaryStarted = r;
      }),
      new Promise<void>((r) => {
        streamStarted = r;
      }),
    ]);
    const { server, client } = await startEcho({
      hooks: {
        onStart: (_req, ctx) => {
          started.push(ctx.method);
          if (ctx.method === "Echo") unaryStarted();
          else streamStarted();
        },
      },
    });
    const inFlight = client.echo(echoRequest({ payload: new Uint8Array([9]), delayMs: 500 }));
    const stream = callFailure(
      (async () => {
        for await (const _ of client.echoStream(echoRequest({ delayMs: 60_000, repeat: 1 }))) {
          // none expected
        }
      })(),
    );
    await bothStarted;
    const shutdown = server.shutdown({ graceMs: 30_000 });
    expect((await stream).code).toBe(status.UNAVAILABLE);
    expect((await callFailure(client.echo(echoRequest()))).code).toBe(status.UNAVAILABLE);
    expect(hex((await inFlight).payload)).toBe("09");
    expect(await shutdown).toEqual({ forced: false, abandoned: 0 });
    expect(started.sort()).toEqual(["Echo", "EchoStream"]);
  });

  it("cancels calls still running when the grace period ends", async () => {
    const probe = abortProbe();
    const { server, client } = await startEcho({ hooks: probe.hooks });
    const inFlight = callFailure(client.echo(echoRequest({ delayMs: 60_000 })));
    await probe.started;
    const result = await server.shutdown({ graceMs: 200 });
    expect(result).toEqual({ forced: true, abandoned: 0 });
    expect((await inFlight).code).toBe(status.UNAVAILABLE);
  });

  it("rejects handlers that do not match the definition", () => {
    expect(() =>
      defineService(EchoServiceDefinition, {
        echo: unary(async () => ({ payload: new Uint8Array(0), seq: 0 })),
        // A unary handler where the definition streams responses.
        echoStream: unary(async () => ({ payload: new Uint8Array(0), seq: 0 })),
      } as never),
    ).toThrow(ServiceDefinitionError);
  });
});
