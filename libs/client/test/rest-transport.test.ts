// The REST transport against a stand-in gateway (loopback HTTP + WebSocket server): routes,
// binary bodies, and failures arriving as the same GrpcCallError the gRPC transport raises.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { common, queue } from "@phoenix/proto";
import { ERROR_DETAIL_TYPE, encodeRichStatus, errorDetail, GrpcCallError } from "@phoenix/wire";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { createRestTransport } from "../src/rest-transport.js";
import type { Transport } from "../src/transport.js";

async function body(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

describe("createRestTransport", () => {
  let server: Server | undefined;
  let wss: WebSocketServer | undefined;
  let transport: Transport | undefined;
  const seen: { method: string; url: string; type: string | undefined; accept: string | undefined }[] = [];

  afterEach(async () => {
    transport?.close();
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    seen.length = 0;
  });

  async function start(handler: (req: IncomingMessage, payload: Uint8Array) => [number, Uint8Array]) {
    server = createServer(async (req, res) => {
      const payload = await body(req);
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        type: req.headers["content-type"],
        accept: req.headers.accept,
      });
      const [code, out] = handler(req, payload);
      res.writeHead(code, { "content-type": "application/x-protobuf" }).end(Buffer.from(out));
    });
    wss = new WebSocketServer({ server });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    transport = createRestTransport(`http://127.0.0.1:${port}`);
    return transport;
  }

  it("posts binary protobuf to the RPC's route and decodes the answer", async () => {
    const t = await start((_req, payload) => {
      const request = queue.DequeueRequest.decode(payload);
      expect(request.signed?.signature).toEqual(new Uint8Array([1, 2, 3]));
      return [200, queue.DequeueResponse.encode({ messages: [], remaining: 7n } as never).finish()];
    });
    const response = await t.queue.dequeue({
      signed: { tbs: new Uint8Array([9]), signature: new Uint8Array([1, 2, 3]) },
    });
    expect(seen[0]).toMatchObject({
      method: "POST",
      url: "/v1/qs/queue/dequeue",
      type: "application/x-protobuf",
    });
    expect(seen[0]?.accept).toBe("application/x-protobuf");
    expect(response).toEqual({ messages: [], remaining: 7n });
  });

  it("a request on a keep-alive connection the gateway just closed as idle is sent again, not failed", async () => {
    const t = await start(() => [
      200,
      queue.DequeueResponse.encode({ messages: [], remaining: 0n } as never).finish(),
    ]);
    const dequeue = () =>
      t.queue.dequeue({ signed: { tbs: new Uint8Array([9]), signature: new Uint8Array([1, 2, 3]) } });
    // fetch picks the pooled connection the server has just closed about half of the time
    // (undici #3492); 20 rounds make a missed retry all but certain to show.
    for (let round = 0; round < 20; round++) {
      await dequeue();
      server?.closeIdleConnections();
      await expect(dequeue()).resolves.toEqual({ messages: [], remaining: 0n });
    }
    expect(seen).toHaveLength(40);
  });

  it("sends GET routes' fields as query parameters", async () => {
    const t = await start(() => [200, new Uint8Array()]);
    await t.auth.getAsCredentials({ domain: "beta.example" } as never);
    expect(seen[0]).toMatchObject({ method: "GET", url: "/v1/as/credentials?domain=beta.example" });
  });

  it("turns a google.rpc.Status body into a GrpcCallError with its code, message and ErrorDetail", async () => {
    const detail = errorDetail({ reason: common.ErrorReason.ERROR_REASON_WRONG_EPOCH } as common.ErrorDetail);
    const t = await start(() => [
      400,
      encodeRichStatus({ code: 9, message: "epoch moved on", details: [detail] }),
    ]);
    const error = await t.queue.dequeue({} as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    const e = error as GrpcCallError;
    expect(e.code).toBe(9);
    expect(e.statusMessage).toBe("epoch moved on");
    expect(e.path).toBe("/phoenix.queue.v1.QueueService/Dequeue");
    expect(e.details.map((d) => d.typeUrl)).toEqual([`type.googleapis.com/${ERROR_DETAIL_TYPE}`]);
  });

  it("reports an unreachable gateway as UNAVAILABLE", async () => {
    const t = createRestTransport("http://127.0.0.1:1");
    const error = await t.queue.dequeue({} as never).catch((e: unknown) => e);
    t.close();
    expect((error as GrpcCallError).code).toBe(14);
  });

  it("streams over the WebSocket route and ends with the close code's status", async () => {
    const t = await start(() => [404, new Uint8Array()]);
    wss?.on("connection", (socket, req) => {
      seen.push({ method: "WS", url: req.url ?? "", type: undefined, accept: undefined });
      socket.on("message", (data: Buffer) => {
        const frame = queue.ListenRequest.decode(new Uint8Array(data));
        if (frame.request?.$case === "init")
          socket.send(
            queue.ListenResponse.encode({ event: { $case: "empty", value: {} } } as never).finish(),
          );
        else socket.close(4016, "stale timestamp");
      });
    });
    const call = t.queue.listen();
    await call.send({
      request: { $case: "init", value: { tbs: new Uint8Array([1]), signature: new Uint8Array([2]) } },
    });
    const iterator = call.responses[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect((first.value as queue.ListenResponse).event?.$case).toBe("empty");
    await call.send({ request: { $case: "ack", value: { upToSequenceNumber: 1n } } } as never);
    const error = await iterator.next().catch((e: unknown) => e);
    expect(seen.find((s) => s.method === "WS")?.url).toBe("/v1/qs/ws/listen?encoding=proto");
    expect((error as GrpcCallError).code).toBe(16);
    expect((error as GrpcCallError).statusMessage).toBe("stale timestamp");
  });
});
