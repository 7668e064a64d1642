import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { REQUEST_ID_KEY } from "@phoenix/wire";

const VALID_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The client's request id if it is sane, else undefined. */
export function clientRequestId(metadata: Metadata): string | undefined {
  const value = metadata.get(REQUEST_ID_KEY)[0];
  return typeof value === "string" && VALID_REQUEST_ID.test(value) ? value : undefined;
}

/** The call's request id: the client's, else one assigned (and stored in the metadata) now. */
export function requestIdOf(metadata: Metadata): string {
  const existing = clientRequestId(metadata);
  if (existing) return existing;
  const id = randomUUID();
  metadata.set(REQUEST_ID_KEY, id);
  return id;
}
