import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { common, createClientFactory, queue } from "@phoenix/proto";
import { afterEach, describe, expect, it } from "vitest";
import type { ServiceDefinitionLike } from "./definitions.js";
import { ERROR_DETAIL_TYPE, errorDetail } from "./error-detail.js";
import { REQUEST_ID_KEY } from "./request-id.js";
import {
  channelOptionsOf,
  createChannel,
  createServiceClient,
  GrpcCallError,
  phoenixCallMiddleware,
} from "./service-client.js";
import { encodeRichStatus, STATUS_DETAILS_KEY } from "./status-details.js";

const identity = (b: Buffer) => b;
const bytesMethod = (path: string) => ({
  path,
  requestStream: false as const,
  responseStream: false as const,
  requestSerialize: (value: Uint8Array) => Buffer.from(value),
  requestDeserialize: (bytes: Buffer): Uint8Array => new Uint8Array(bytes),
  responseSerialize: (value: Uint8Array) => Buffer.from(value),
  responseDeserialize: (bytes: Buffer): Uint8Array => new Uint8Array(bytes),
});

/** A hand-written definition: one method echoing its request, one refusing with rich details. */
const definition = {
  echo: bytesMethod("/phoenix.test.wire.v1.WireTest/Echo"),
  refuse: bytesMethod("/phoenix.test.wire.v1.WireTest/Refuse"),
  hang: bytesMethod("/phoenix.test.wire.v1.WireTest/Hang"),
  chat: {
    ...bytesMethod("/phoenix.test.wire.v1.WireTest/Chat"),
    requestStream: true as const,
    responseStream: true as const,
  },
} satisfies ServiceDefinitionLike;

interface Seen {
  requestId: string | undefined;
  deadline: number | undefined;
}

async function startServer(seen: Seen[]): Promise<{ server: Server; address: string }> {
  const server = new Server();
  const record = (call: ServerUnaryCall<Buffer, Buffer>) => {
    const id = call.metadata.get(REQUEST_ID_KEY)[0];
    const deadline = call.getDeadline();
    seen.push({
      requestId: typeof id === "string" ? id : undefined,
      deadline:
        deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : undefined,
    });
  };
  server.addService(
    {
      echo: { ...definition.echo, requestDeserialize: identity, responseSerialize: identity },
      refuse: { ...definition.refuse, requestDeserialize: identity, responseSerialize: identity },
      hang: { ...definition.hang, requestDeserialize: identity, responseSerialize: identity },
      chat: { ...definition.chat, requestDeserialize: identity, responseSerialize: identity },
    },
    {
      echo(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
        record(call);
        callback(null, call.request);
      },
      refuse(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
        record(call);
        const detail = errorDetail({ reason: common.ErrorReason.ERROR_REASON_QUOTA, detail: undefined });
        const trailers = new Metadata();
        trailers.set(
          STATUS_DETAILS_KEY,
          Buffer.from(
            encodeRichStatus({ code: status.RESOURCE_EXHAUSTED, message: "queue full", details: [detail] }),
          ),
        );
        callback({ code: status.RESOURCE_EXHAUSTED, details: "queue full", metadata: trailers });
      },
      hang(call: ServerUnaryCall<Buffer, Buffer>) {
        record(call);
      },
      // Answers each request with its bytes reversed; the call ends when the client half-closes.
      chat(call: ServerDuplexStream<Buffer, Buffer>) {
        call.on("data", (request: Buffer) => call.write(Buffer.from(request).reverse()));
        call.on("end", () => call.end());
        call.on("error", () => {});
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return { server, address: `127.0.0.1:${port}` };
}

describe("createServiceClient", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  async function connect(seen: Seen[]) {
    const { server, address } = await startServer(seen);
    const channel = createChannel(address);
    cleanups.push(
      () => channel.close(),
      () => server.forceShutdown(),
    );
    return createServiceClient(definition, channel);
  }

  async function connectChannel(seen: Seen[]) {
    const { server, address } = await startServer(seen);
    const channel = createChannel(address);
    cleanups.push(
      () => channel.close(),
      () => server.forceShutdown(),
    );
    return channel;
  }

  it("resolves a unary call with the decoded response", async () => {
    const client = await connect([]);
    expect(await client.echo(new Uint8Array([1, 2, 3]))).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("rejects with GrpcCallError carrying code, message and the decoded Phoenix error detail", async () => {
    const client = await connect([]);
    const error = await client.refuse(new Uint8Array()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    const call = error as GrpcCallError;
    expect(call.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(call.statusMessage).toBe("queue full");
    expect(call.path).toBe("/phoenix.test.wire.v1.WireTest/Refuse");
    expect(call.message).toBe("/phoenix.test.wire.v1.WireTest/Refuse: RESOURCE_EXHAUSTED: queue full");
    expect(call.details.map((d) => d.typeUrl)).toEqual([`type.googleapis.com/${ERROR_DETAIL_TYPE}`]);
    expect(common.ErrorDetail.decode(call.details[0]?.value ?? new Uint8Array()).reason).toBe(
      common.ErrorReason.ERROR_REASON_QUOTA,
    );
  });

  it("forwards the parent call's request id, caps the deadline by it and cancels with it", async () => {
    const seen: Seen[] = [];
    const client = await connect(seen);
    const abort = new AbortController();
    const parentDeadline = Date.now() + 30_000;
    const parent = { requestId: "outer-7", deadline: new Date(parentDeadline), signal: abort.signal };
    await client.echo(new Uint8Array([9]), { parent, deadlineMs: 120_000 });
    expect(seen[0]?.requestId).toBe("outer-7");
    // The parent's 30 s win over the call's own 120 s (the grpc-timeout header rounds to the ms).
    expect(seen[0]?.deadline).toBeLessThan(parentDeadline + 1_000);

    const hanging = client.hang(new Uint8Array(), { parent }).catch((e: unknown) => e);
    await expect.poll(() => seen.length).toBe(2);
    abort.abort();
    const error = await hanging;
    expect(error).toBeInstanceOf(GrpcCallError);
    expect((error as GrpcCallError).code).toBe(status.CANCELLED);
  });

  it("fails a call past its deadline with DEADLINE_EXCEEDED", async () => {
    const client = await connect([]);
    const error = await client.hang(new Uint8Array(), { deadlineMs: 200 }).catch((e: unknown) => e);
    expect((error as GrpcCallError).code).toBe(status.DEADLINE_EXCEEDED);
  });

  it("bidi: requests sent before the responses are read go out; end() finishes the call", async () => {
    const client = await connect([]);
    const call = client.chat();
    await call.send(new Uint8Array([1, 2]));
    await call.send(new Uint8Array([3, 4, 5]));
    call.end();
    const answers: Uint8Array[] = [];
    for await (const answer of call.responses) answers.push(answer);
    expect(answers).toEqual([new Uint8Array([2, 1]), new Uint8Array([5, 4, 3])]);
  });

  it("bidi: cancel() ends the responses with CANCELLED", async () => {
    const client = await connect([]);
    const call = client.chat();
    await call.send(new Uint8Array([7]));
    const read = (async () => {
      const got: Uint8Array[] = [];
      for await (const answer of call.responses) {
        got.push(answer);
        call.cancel();
      }
      return got;
    })();
    const error = await read.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    expect((error as GrpcCallError).code).toBe(status.CANCELLED);
  });

  it("bidi: send() after the call ended resolves instead of waiting forever", async () => {
    const client = await connect([]);
    const call = client.chat();
    await call.send(new Uint8Array([1]));
    call.cancel();
    for (let i = 0; i < 3; i++) await call.send(new Uint8Array([i]));
    const error = await (async () => {
      for await (const _ of call.responses);
    })().catch((e: unknown) => e);
    expect((error as GrpcCallError).code).toBe(status.CANCELLED);
  });

  it("takes a generated <Service>Definition: the call goes to its method path and fails with the server status", async () => {
    const channel = await connectChannel([]);
    // The server has no QueueService: the generated client's call reaches it and is refused.
    const qs = createServiceClient(queue.QueueServiceDefinition, channel);
    const error = await qs.getVerifyingKey({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    expect((error as GrpcCallError).code).toBe(status.UNIMPLEMENTED);
    expect((error as GrpcCallError).path).toBe("/phoenix.queue.v1.QueueService/GetVerifyingKey");
  });

  it("phoenixCallMiddleware on a plain nice-grpc client: deadline reaches the server, failures are GrpcCallError", async () => {
    const seen: Seen[] = [];
    const channel = await connectChannel(seen);
    const client = createClientFactory()
      .use(phoenixCallMiddleware)
      .create(
        definition,
        channel.getChannel() as Parameters<ReturnType<typeof createClientFactory>["create"]>[1],
      );
    const deadline = Date.now() + 30_000;
    expect(await client.echo(new Uint8Array([4]), { deadline })).toEqual(new Uint8Array([4]));
    expect(seen[0]?.deadline).toBeGreaterThan(deadline - 5_000);
    expect(seen[0]?.deadline).toBeLessThan(deadline + 1_000);
    const error = await client.refuse(new Uint8Array()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    expect((error as GrpcCallError).details.map((d) => d.typeUrl)).toEqual([
      `type.googleapis.com/${ERROR_DETAIL_TYPE}`,
    ]);
  });
});

describe("channelOptionsOf", () => {
  it("caps the reconnect backoff unless the caller sets its own, and applies the message limit", () => {
    expect(channelOptionsOf()).toEqual({
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 2000,
    });
    const own = channelOptionsOf({
      maxMessageBytes: 1024,
      channelOptions: { "grpc.max_reconnect_backoff_ms": 30_000, "grpc.keepalive_time_ms": 10_000 },
    });
    expect(own).toEqual({
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 30_000,
      "grpc.keepalive_time_ms": 10_000,
      "grpc.max_receive_message_length": 1024,
      "grpc.max_send_message_length": 1024,
    });
  });
});
