import { GrpcCallError } from "@phoenix/runtime/grpc";

/** The gRPC error `promise` fails with (throws if it succeeds or fails otherwise). */
export async function failure(promise: Promise<unknown>): Promise<GrpcCallError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GrpcCallError) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}
