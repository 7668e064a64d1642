import type { Client, Metadata } from "@grpc/grpc-js";
import type { RpcInfo } from "@phoenix/proto";
import { type BidiCall, createChannel, createServiceClient, type ServiceClient } from "@phoenix/runtime/grpc";
import { service as healthService } from "grpc-health-check";
import { CLIENT_SERVICES, type UpstreamName, upstreamOf } from "../contracts.js";

/** `host:port` of each upstream service; several may share one address (all-in-one homeserver). */
export type UpstreamAddresses = Readonly<Record<UpstreamName, string>>;

export interface UpstreamOptions {
  addresses: UpstreamAddresses;
  /** RPCs to make callable (default: every client-facing one). */
  rpcs: readonly RpcInfo[];
  /** Largest message sent or received (match the services' `GRPC_MAX_MESSAGE_BYTES`). */
  maxMessageBytes: number;
  /** HTTP/2 keep-alive ping interval on idle and busy connections (ms). */
  keepaliveMs: number;
}

/** Per-call options of a forwarded call. */
export interface ForwardOptions {
  deadlineMs: number;
  signal?: AbortSignal;
  metadata?: Metadata;
}

/** Serving status of each upstream as its grpc.health.v1 answers for its service name. */
export type UpstreamHealth = Record<UpstreamName, string>;

interface RawUnaryMethod {
  readonly path: string;
  readonly requestStream: false;
  readonly responseStream: false;
  requestSerialize(value: Uint8Array): Buffer;
  requestDeserialize(bytes: Buffer): Uint8Array;
  responseSerialize(value: Uint8Array): Buffer;
  responseDeserialize(bytes: Buffer): Uint8Array;
}

interface RawBidiMethod extends Omit<RawUnaryMethod, "requestStream" | "responseStream"> {
  readonly requestStream: true;
  readonly responseStream: true;
}

const toBuffer = (value: Uint8Array): Buffer => Buffer.from(value.buffer, value.byteOffset, value.byteLength);
const toBytes = (bytes: Buffer): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);

function rawMethod<S extends boolean>(path: string, streaming: S) {
  return {
    path,
    requestStream: streaming,
    responseStream: streaming,
    requestSerialize: toBuffer,
    requestDeserialize: toBytes,
    responseSerialize: toBuffer,
    responseDeserialize: toBytes,
  };
}

/**
 * The gateway's connections to the AS, DS and QS: one keep-alive channel per distinct address,
 * calls forwarded as raw protobuf bytes (the gateway never re-encodes a request it has checked).
 */
export class Upstreams {
  private readonly channels = new Map<string, Client>();
  private readonly unaryClients = new Map<string, ServiceClient<Record<string, RawUnaryMethod>>>();
  private readonly bidiClients = new Map<string, ServiceClient<Record<string, RawBidiMethod>>>();
  private readonly healthClients = new Map<UpstreamName, ServiceClient<typeof healthService>>();

  constructor(private readonly options: UpstreamOptions) {
    const unaryDefs = new Map<UpstreamName, Record<string, RawUnaryMethod>>();
    const bidiDefs = new Map<UpstreamName, Record<string, RawBidiMethod>>();
    for (const rpc of options.rpcs) {
      const upstream = upstreamOf(rpc.service);
      if (!upstream) continue;
      if (!rpc.clientStreaming && !rpc.serverStreaming) {
        const defs = unaryDefs.get(upstream) ?? {};
        defs[rpc.path] = rawMethod(rpc.path, false);
        unaryDefs.set(upstream, defs);
      } else if (rpc.clientStreaming && rpc.serverStreaming) {
        const defs = bidiDefs.get(upstream) ?? {};
        defs[rpc.path] = rawMethod(rpc.path, true);
        bidiDefs.set(upstream, defs);
      }
    }
    for (const name of Object.keys(CLIENT_SERVICES) as UpstreamName[]) {
      const channel = this.channel(options.addresses[name]);
      // Deadlines are always given per call; no client default.
      this.unaryClients.set(
        name,
        createServiceClient(unaryDefs.get(name) ?? {}, channel, { defaultDeadlineMs: null }),
      );
      this.bidiClients.set(
        name,
        createServiceClient(bidiDefs.get(name) ?? {}, channel, { defaultDeadlineMs: null }),
      );
      this.healthClients.set(name, createServiceClient(healthService, channel, { defaultDeadlineMs: null }));
    }
  }

  private channel(address: string): Client {
    let channel = this.channels.get(address);
    if (!channel) {
      channel = createChannel(address, {
        maxMessageBytes: this.options.maxMessageBytes,
        channelOptions: {
          "grpc.keepalive_time_ms": this.options.keepaliveMs,
          "grpc.keepalive_timeout_ms": Math.min(20_000, this.options.keepaliveMs),
          "grpc.keepalive_permit_without_calls": 1,
        },
      });
      this.channels.set(address, channel);
    }
    return channel;
  }

  /** Forwards one unary call; rejects with the runtime's `GrpcCallError` on a non-OK status. */
  unary(rpc: RpcInfo, request: Uint8Array, options: ForwardOptions): Promise<Uint8Array> {
    const call = this.unaryClients.get(this.upstreamOf(rpc))?.[rpc.path];
    if (!call) throw new Error(`${rpc.path} is not a forwardable unary rpc`);
    return call(request, {
      deadlineMs: options.deadlineMs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    });
  }

  /** Opens a bidi stream (no deadline: listening streams live until either side ends them). */
  bidi(rpc: RpcInfo, options: Omit<ForwardOptions, "deadlineMs">): BidiCall<Uint8Array, Uint8Array> {
    const call = this.bidiClients.get(this.upstreamOf(rpc))?.[rpc.path];
    if (!call) throw new Error(`${rpc.path} is not a forwardable bidi rpc`);
    return call({
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    });
  }

  /**
   * Asks each upstream's grpc.health.v1 for its service (`phoenix.auth.v1.AuthService`, …);
   * an unreachable one or one without that service reports UNAVAILABLE / NOT_FOUND.
   */
  async health(timeoutMs: number): Promise<UpstreamHealth> {
    const names = Object.keys(CLIENT_SERVICES) as UpstreamName[];
    const results = await Promise.all(
      names.map(async (name) => {
        const client = this.healthClients.get(name);
        try {
          const check = client?.Check;
          if (!check) return "UNAVAILABLE";
          const reply = (await check({ service: CLIENT_SERVICES[name] }, { deadlineMs: timeoutMs })) as
            | { status?: string | number }
            | undefined;
          const status = reply?.status;
          return typeof status === "number" ? (HEALTH_NAMES[status] ?? "UNKNOWN") : (status ?? "UNKNOWN");
        } catch (error) {
          const code = (error as { code?: number }).code;
          return code === 5 ? "NOT_FOUND" : "UNAVAILABLE";
        }
      }),
    );
    return Object.fromEntries(names.map((n, i) => [n, results[i] as string])) as UpstreamHealth;
  }

  /** Closes every channel (calls in flight fail with UNAVAILABLE/CANCELLED). */
  close(): void {
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }

  private upstreamOf(rpc: RpcInfo): UpstreamName {
    const name = upstreamOf(rpc.service);
    if (!name) throw new Error(`${rpc.service} is not served through the gateway`);
    return name;
  }
}

const HEALTH_NAMES: Record<number, string> = {
  0: "UNKNOWN",
  1: "SERVING",
  2: "NOT_SERVING",
  3: "SERVICE_UNKNOWN",
};
