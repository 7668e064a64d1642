import { type Client, Metadata, type ServiceError } from "@grpc/grpc-js";
import { UnavailableError } from "@phoenix/runtime/errors";
import { type CallContext, createChannel, REQUEST_ID_KEY } from "@phoenix/runtime/grpc";

/** Metadata naming the homeserver that forwarded a client request (per-domain limits upstream). */
export const ORIGIN_DOMAIN_KEY = "phoenix-origin-domain";

/** True for errors of a grpc-js call (they carry the remote status). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as ServiceError).code === "number" && "details" in error;
}

const identity = (bytes: Buffer) => bytes;

/**
 * Plaintext channels to this homeserver's AS, DS and QS, by service name, for forwarded client
 * requests. Requests and responses travel as raw protobuf bytes: nothing is decoded or
 * re-encoded, so the client's signatures verify upstream.
 */
export class UpstreamServices {
  private readonly channels = new Map<string, Client>();

  constructor(
    private readonly addresses: ReadonlyMap<string, string>,
    private readonly maxMessageBytes: number,
  ) {}

  /** Calls `method` (a full gRPC path) upstream with the client's request bytes. */
  call(method: string, request: Uint8Array, origin: string, ctx: CallContext): Promise<Uint8Array> {
    const service = method.split("/")[1] ?? "";
    const address = this.addresses.get(service);
    if (address === undefined) {
      throw new UnavailableError(`this homeserver does not serve ${service} to federation`);
    }
    let channel = this.channels.get(service);
    if (channel === undefined) {
      channel = createChannel(address, { maxMessageBytes: this.maxMessageBytes });
      this.channels.set(service, channel);
    }
    const metadata = new Metadata();
    metadata.set(ORIGIN_DOMAIN_KEY, origin);
    metadata.set(REQUEST_ID_KEY, ctx.requestId);
    const options = ctx.deadline ? { deadline: ctx.deadline } : {};
    const target = channel;
    return new Promise((resolve, reject) => {
      const call = target.makeUnaryRequest(
        method,
        identity,
        identity,
        Buffer.from(request),
        metadata,
        options,
        (error, response) => {
          ctx.signal.removeEventListener("abort", cancel);
          if (error) reject(error);
          else resolve(new Uint8Array(response ?? Buffer.alloc(0)));
        },
      );
      function cancel() {
        call.cancel();
      }
      ctx.signal.addEventListener("abort", cancel, { once: true });
    });
  }

  /** Closes every channel. */
  close(): void {
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }
}
