// A stand-in for a homeserver's AS and DS: records the exact request bytes and metadata of every
// call and answers with canned bytes or a canned status (with details).
import * as grpc from "@grpc/grpc-js";
import { auth, delivery } from "@phoenix/proto";

export interface RecordedCall {
  path: string;
  request: Uint8Array;
  metadata: grpc.Metadata;
}

export type Answer =
  | { response: Uint8Array }
  | { error: { code: grpc.status; message: string; details?: Uint8Array } };

const identity = (bytes: Buffer) => bytes;

/** Serves `answers` (by gRPC path) for AuthService and DeliveryService with raw-byte handlers. */
export class FakeUpstream {
  readonly calls: RecordedCall[] = [];
  private readonly server = new grpc.Server();
  port = 0;

  constructor(private readonly answers: Map<string, Answer | "hang">) {
    for (const definition of [auth.AuthServiceService, delivery.DeliveryServiceService]) {
      const raw: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
      const implementation: grpc.UntypedServiceImplementation = {};
      for (const [name, method] of Object.entries(definition)) {
        if (method.requestStream || method.responseStream) continue;
        raw[name] = {
          ...method,
          requestDeserialize: identity,
          responseSerialize: identity,
        } as grpc.MethodDefinition<unknown, unknown>;
        implementation[name] = (
          call: grpc.ServerUnaryCall<Buffer, Buffer>,
          callback: grpc.sendUnaryData<Buffer>,
        ) => this.handle(method.path, call, callback);
      }
      this.server.addService(raw as grpc.ServiceDefinition, implementation);
    }
  }

  async start(): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    return this.port;
  }

  stop(): void {
    this.server.forceShutdown();
  }

  private handle(
    path: string,
    call: grpc.ServerUnaryCall<Buffer, Buffer>,
    callback: grpc.sendUnaryData<Buffer>,
  ) {
    this.calls.push({ path, request: new Uint8Array(call.request), metadata: call.metadata });
    const answer = this.answers.get(path);
    if (answer === "hang") return; // answered by the caller's deadline / cancellation
    if (answer === undefined) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: "not faked" });
      return;
    }
    if ("response" in answer) {
      callback(null, Buffer.from(answer.response));
      return;
    }
    const metadata = new grpc.Metadata();
    if (answer.error.details) metadata.set("grpc-status-details-bin", Buffer.from(answer.error.details));
    callback({ code: answer.error.code, details: answer.error.message, metadata });
  }
}
