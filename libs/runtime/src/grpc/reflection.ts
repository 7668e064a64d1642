import type {
  handleBidiStreamingCall,
  Server,
  ServerDuplexStream,
  ServiceDefinition,
  UntypedHandleCall,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
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

/** Decoded descriptor sets: the services of one process share libs/proto's set, decoded once. */
const decodedSets = new WeakMap<Uint8Array, PackageDefinition>();
let healthDefinition: PackageDefinition | undefined;

export function packageDefinitionOf(source: ReflectionSource): PackageDefinition {
  if ("packageDefinition" in source) return source.packageDefinition;
  if ("descriptorSet" in source) {
    let decoded = decodedSets.get(source.descriptorSet);
    if (!decoded) {
      decoded = loadFileDescriptorSetFromBuffer(Buffer.from(source.descriptorSet), LOADER_OPTIONS);
      decodedSets.set(source.descriptorSet, decoded);
    }
    return decoded;
  }
  return loadSync([...source.protoFiles], {
    ...LOADER_OPTIONS,
    includeDirs: [...(source.includeDirs ?? [])],
  });
}

/**
 * The reflection service (v1 and v1alpha) listing exactly `services` plus `grpc.health.v1.Health`
 * (a shared descriptor set holds every contract; only those served here are advertised), and
 * the served services the source does not describe. Its index of the schemas is built on the
 * first reflection call, not at start: building it costs more than the rest of a service's start.
 */
export function createReflection(
  source: ReflectionSource,
  services: readonly string[],
): { reflection: Pick<ReflectionService, "addToServer">; undescribed: string[] } {
  healthDefinition ??= loadSync(healthProtoPath, LOADER_OPTIONS);
  const definition = { ...packageDefinitionOf(source), ...healthDefinition };
  const listed = { services: [...services, "grpc.health.v1.Health"] };
  let handlers: UntypedServiceImplementation[] | undefined;
  const real = (): UntypedServiceImplementation[] => {
    handlers ??= implementationsOf(new ReflectionService(definition, listed));
    return handlers;
  };
  const reflection = {
    addToServer(server: Server): void {
      // The same service definitions as the real one (v1, v1alpha), from an empty index.
      const shapes = serviceDefinitionsOf(new ReflectionService({}, { services: [] }));
      shapes.forEach((shape, index) => {
        const lazy: UntypedServiceImplementation = {};
        for (const method of Object.keys(shape)) {
          // Reflection has one method, a bidi stream (ServerReflectionInfo).
          lazy[method] = ((call: ServerDuplexStream<unknown, unknown>) => {
            const handler = real()[index]?.[method] as handleBidiStreamingCall<unknown, unknown> | undefined;
            handler?.(call);
          }) as UntypedHandleCall;
        }
        server.addService(shape, lazy);
      });
    },
  };
  return { reflection, undescribed: services.filter((name) => !(name in definition)) };
}

/** What `reflection.addToServer` registers, captured in order. */
function registered(reflection: ReflectionService): [ServiceDefinition, UntypedServiceImplementation][] {
  const added: [ServiceDefinition, UntypedServiceImplementation][] = [];
  reflection.addToServer({
    addService: (definition: ServiceDefinition, implementation: UntypedServiceImplementation) => {
      added.push([definition, implementation]);
    },
  } as unknown as Server);
  return added;
}

function serviceDefinitionsOf(reflection: ReflectionService): ServiceDefinition[] {
  return registered(reflection).map(([definition]) => definition);
}

function implementationsOf(reflection: ReflectionService): UntypedServiceImplementation[] {
  return registered(reflection).map(([, implementation]) => implementation);
}
