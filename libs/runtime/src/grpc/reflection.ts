import { loadFileDescriptorSetFromBuffer, loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

/**
 * Where server reflection learns the schemas: `.proto` files (with include dirs), an encoded
 * `google.protobuf.FileDescriptorSet` (libs/proto ships one for all contracts), or a ready
 * proto-loader package definition.
 */
export type ReflectionSource =
  | { protoFiles: readonly string[]; includeDirs?: readonly string[] }
  | { descriptorSet: Uint8Array }
  | { packageDefinition: PackageDefinition };

/** Matches how grpc-js' own loaders read protos; the options only affect JS objects, not descriptors. */
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export function packageDefinitionOf(source: ReflectionSource): PackageDefinition {
  if ("packageDefinition" in source) return source.packageDefinition;
  if ("descriptorSet" in source)
    return loadFileDescriptorSetFromBuffer(Buffer.from(source.descriptorSet), LOADER_OPTIONS);
  return loadSync([...source.protoFiles], {
    ...LOADER_OPTIONS,
    includeDirs: [...(source.includeDirs ?? [])],
  });
}

/**
 * The reflection service (v1 and v1alpha) listing exactly `services` plus `grpc.health.v1.Health`
 * (a shared descriptor set holds every contract; only those served here are advertised), and
 * the served services the source does not describe.
 */
export function createReflection(
  source: ReflectionSource,
  services: readonly string[],
): { reflection: ReflectionService; undescribed: string[] } {
  const definition = { ...packageDefinitionOf(source), ...loadSync(healthProtoPath, LOADER_OPTIONS) };
  const reflection = new ReflectionService(definition, { services: [...services, "grpc.health.v1.Health"] });
  return { reflection, undescribed: services.filter((name) => !(name in definition)) };
}
