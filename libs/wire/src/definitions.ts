/**
 * Structural view of a grpc-js service definition: what ts-proto (`outputServices=grpc-js`)
 * generates into libs/proto, and what a hand-written test definition provides.
 */
export interface MethodDefinitionLike {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  requestSerialize(value: never): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
  readonly originalName?: string;
}

export type ServiceDefinitionLike = { readonly [method: string]: MethodDefinitionLike };

/** A message codec of ts-proto's generated code. */
interface MessageCodecLike {
  decode(input: Uint8Array): unknown;
}

/** One method of a generated `<Service>Definition` (ts-proto `outputServices=generic-definitions`). */
export interface GeneratedMethodLike {
  readonly name: string;
  readonly requestType: MessageCodecLike;
  readonly requestStream: boolean;
  readonly responseType: MessageCodecLike;
  readonly responseStream: boolean;
}

/**
 * A generated `<Service>Definition` (e.g. `AuthServiceDefinition` from @phoenix/proto): what
 * nice-grpc's `createClient` takes.
 */
export interface GeneratedServiceDefinitionLike {
  readonly name: string;
  readonly fullName: string;
  readonly methods: { readonly [method: string]: GeneratedMethodLike };
}

/** A definition a service client can be made for: generated for nice-grpc, or grpc-js shaped. */
export type AnyServiceDefinition = ServiceDefinitionLike | GeneratedServiceDefinitionLike;

/** The methods of a definition, keyed by their lowerCamel client name. */
export type MethodsOf<D> = D extends GeneratedServiceDefinitionLike ? D["methods"] : D;

export type RequestOf<M> = M extends { requestDeserialize(bytes: Buffer): infer R }
  ? R
  : M extends { requestType: { decode(input: Uint8Array): infer R } }
    ? R
    : never;
export type ResponseOf<M> = M extends { responseDeserialize(bytes: Buffer): infer R }
  ? R
  : M extends { responseType: { decode(input: Uint8Array): infer R } }
    ? R
    : never;

/** True for a generated `<Service>Definition` rather than a grpc-js one. */
export function isGeneratedDefinition(
  definition: AnyServiceDefinition,
): definition is GeneratedServiceDefinitionLike {
  return (
    typeof definition.fullName === "string" &&
    typeof definition.methods === "object" &&
    definition.methods !== null &&
    !("path" in definition.methods)
  );
}

/** A definition is malformed or does not match the handlers given for it. */
export class ServiceDefinitionError extends Error {
  override readonly name = "ServiceDefinitionError";
}

/** Splits `/pkg.Service/Method` into its parts. */
export function splitPath(path: string): { service: string; method: string } {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (!match) return { service: "unknown", method: path };
  return { service: match[1] as string, method: match[2] as string };
}

/** The fully-qualified service name (`phoenix.queue.v1.QueueService`) of a definition. */
export function serviceNameOf(definition: ServiceDefinitionLike): string {
  const methods = Object.values(definition);
  const first = methods[0];
  if (!first) throw new ServiceDefinitionError("service definition has no methods");
  const { service } = splitPath(first.path);
  for (const m of methods) {
    if (splitPath(m.path).service !== service) {
      throw new ServiceDefinitionError(`service definition mixes services: ${first.path} and ${m.path}`);
    }
  }
  return service;
}
