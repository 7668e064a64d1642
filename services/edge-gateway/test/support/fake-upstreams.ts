// Loopback gRPC servers standing in for the AS, DS and QS: every RPC of the generated service
// definitions is answered by a per-test behaviour (default UNIMPLEMENTED), plus grpc.health.v1.
import * as grpc from "@grpc/grpc-js";
import { auth, delivery, queue } from "@phoenix/proto";
import { encodeRichStatus, type StatusDetail } from "@phoenix/runtime/errors";
import { HealthImplementation } from "grpc-health-check";

type Definition = grpc.ServiceDefinition;

/** What a fake unary handler gets and returns. */
export type UnaryBehaviour = (
  request: unknown,
  call: grpc.ServerUnaryCall<unknown, unknown>,
) => Promise<unknown>;
/** A fake bidi handler. */
export type BidiBehaviour = (call: grpc.ServerDuplexStream<unknown, unknown>) => void;

/** A gRPC error with an optional google.rpc.Status details trailer. */
export function grpcError(
  code: grpc.status,
  message: string,
  details: StatusDetail[] = [],
): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (details.length > 0) {
    metadata.set("grpc-status-details-bin", Buffer.from(encodeRichStatus({ code, message, details })));
  }
  return Object.assign(new Error(message), { code, details: message, metadata }) as grpc.ServiceError;
}

export interface FakeUpstream {
  readonly address: string;
  readonly health: HealthImplementation;
  /** Calls seen, by gRPC path: request (undefined for streams) and metadata. */
  readonly calls: { path: string; request: unknown; metadata: grpc.Metadata; deadline: grpc.Deadline }[];
  unary(path: string, behaviour: UnaryBehaviour): void;
  bidi(path: string, behaviour: BidiBehaviour): void;
  close(): Promise<void>;
}

const SERVICES: Record<string, Definition> = {
  "phoenix.auth.v1.AuthService": auth.AuthServiceService as unknown as Definition,
  "phoenix.delivery.v1.DeliveryService": delivery.DeliveryServiceService as unknown as Definition,
  "phoenix.queue.v1.QueueService": queue.QueueServiceService as unknown as Definition,
};

/** Starts one server that serves all three services (as the all-in-one homeserver would). */
export async function startFakeUpstream(): Promise<FakeUpstream> {
  const server = new grpc.Server();
  const unary = new Map<string, UnaryBehaviour>();
  const bidi = new Map<string, BidiBehaviour>();
  const calls: FakeUpstream["calls"] = [];
  const open = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  for (const definition of Object.values(SERVICES)) {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [key, method] of Object.entries(definition)) {
      if (!method.requestStream && !method.responseStream) {
        impl[key] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          calls.push({
            path: method.path,
            request: call.request,
            metadata: call.metadata,
            deadline: call.getDeadline(),
          });
          const behaviour = unary.get(method.path);
          if (!behaviour) {
            callback(grpcError(grpc.status.UNIMPLEMENTED, `${method.path} has no fake behaviour`));
            return;
          }
          behaviour(call.request, call).then(
            (response) => callback(null, response),
            (error: grpc.ServiceError) => callback(error),
          );
        };
      } else if (method.requestStream && method.responseStream) {
        impl[key] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          open.add(call);
          calls.push({
            path: method.path,
            request: undefined,
            metadata: call.metadata,
            deadline: call.getDeadline(),
          });
          call.once("close", () => open.delete(call));
          call.once("finish", () => open.delete(call));
          const behaviour = bidi.get(method.path);
          if (!behaviour) {
            call.emit("error", grpcError(grpc.status.UNIMPLEMENTED, `${method.path} has no fake behaviour`));
            return;
          }
          behaviour(call);
        };
      }
    }
    server.addService(definition, impl);
  }
  const health = new HealthImplementation({
    "": "SERVING",
    ...Object.fromEntries(Object.keys(SERVICES).map((name) => [name, "SERVING" as const])),
  });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    health,
    calls,
    unary: (path, behaviour) => unary.set(path, behaviour),
    bidi: (path, behaviour) => bidi.set(path, behaviour),
    close: () =>
      new Promise<void>((resolve) => {
        for (const call of open) call.destroy();
        const force = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
