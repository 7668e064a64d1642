import { GrpcCallError } from "../grpc/index.js";

/** The gRPC error `promise` fails with; throws if it succeeds or fails with anything else. */
export async function callFailure(promise: Promise<unknown>): Promise<GrpcCallError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GrpcCallError) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}
