import { createRequire } from "node:module";
import { type Client, credentials, loadPackageDefinition, Metadata, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";

/** `grpc.health.v1.Health/Check` → the status name, or the error's code. */
export function healthCheck(channel: Client, service: string): Promise<string> {
  const check = healthService.Check;
  if (!check) throw new Error("health definition lacks Check");
  return new Promise((resolve, reject) => {
    channel.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      check.responseDeserialize,
      { service },
      new Metadata(),
      { deadline: Date.now() + 5000 },
      (error: ServiceError | null, response?: object) => {
        if (error) reject(error);
        else resolve(String((response as { status?: unknown }).status));
      },
    );
  });
}

interface ReflectionStream {
  write(message: object): boolean;
  end(): void;
  on(event: "data", listener: (message: ReflectionResponse) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  on(event: "end", listener: () => void): void;
}
export interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
}
type ReflectionClient = new (
  address: string,
  channelCredentials: unknown,
) => Client & { ServerReflectionInfo(options: object): ReflectionStream };

/** One `grpc.reflection.v1.ServerReflection/ServerReflectionInfo` exchange on a fresh channel. */
export async function reflectionInfo(address: string, request: object): Promise<ReflectionResponse> {
  const require = createRequire(import.meta.url);
  const protoFile = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const pkg = loadPackageDefinition(loadSync(protoFile, { keepCase: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: ReflectionClient } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  try {
    return await new Promise<ReflectionResponse>((resolve, reject) => {
      const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
      call.on("data", resolve);
      call.on("error", reject);
      call.write(request);
      call.end();
    });
  } finally {
    client.close();
  }
}

/** The services the server lists through reflection, sorted. */
export async function reflectedServices(address: string): Promise<string[]> {
  const response = await reflectionInfo(address, { list_services: "*" });
  return (response.list_services_response?.service ?? []).map((s) => s.name).sort();
}

/** Whether reflection returns a file descriptor defining `symbol`. */
export async function reflectionDescribes(address: string, symbol: string): Promise<boolean> {
  const response = await reflectionInfo(address, { file_containing_symbol: symbol });
  return (response.file_descriptor_response?.file_descriptor_proto.length ?? 0) > 0;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for assertions). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[k as string] = v as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the first sample with this name whose labels include `labels`. */
export function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string>,
): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

export async function scrape(port: number): Promise<Sample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (response.status !== 200) throw new Error(`metrics answered ${response.status}`);
  return parseMetrics(await response.text());
}
