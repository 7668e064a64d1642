import {
  type ClientHttp2Session,
  connect,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";

/** A push provider's answer. */
export interface ProviderResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text (cut at 64 KiB: provider errors are small JSON objects). */
  body: string;
}

/** The provider could not be reached or did not answer in time (retried like a 503). */
export class ProviderUnreachableError extends Error {
  override readonly name = "ProviderUnreachableError";
}

const MAX_BODY = 64 * 1024;

export interface Http2OriginOptions {
  /** Extra trusted CA certificates (PEM): a private relay, tests. Default: the system's. */
  ca?: string | Buffer;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

/**
 * One HTTP/2 connection to a provider (APNs, FCM, the OAuth token endpoint), reused for every
 * request and reopened after the server closed it (GOAWAY, idle timeout, error). APNs asks
 * providers to keep their connection open rather than connect per notification.
 */
export class Http2Origin {
  private session: ClientHttp2Session | undefined;
  private closed = false;

  constructor(
    readonly origin: string,
    private readonly options: Http2OriginOptions = {},
  ) {}

  async request(
    method: "GET" | "POST",
    path: string,
    headers: OutgoingHttpHeaders,
    body?: string,
  ): Promise<ProviderResponse> {
    const session = this.connected();
    return new Promise<ProviderResponse>((resolve, reject) => {
      let stream: ReturnType<ClientHttp2Session["request"]>;
      try {
        stream = session.request({
          [constants.HTTP2_HEADER_METHOD]: method,
          [constants.HTTP2_HEADER_PATH]: path,
          ...headers,
        });
      } catch (error) {
        // The session went away between the check and the request.
        this.drop(session);
        reject(new ProviderUnreachableError(`${this.origin}: ${(error as Error).message}`));
        return;
      }
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let size = 0;
      stream.setTimeout(this.options.timeoutMs ?? 10_000, () => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(new ProviderUnreachableError(`${this.origin}: no answer in time`));
      });
      stream.on("response", (h) => {
        status = Number(h[constants.HTTP2_HEADER_STATUS] ?? 0);
        responseHeaders = h;
      });
      stream.on("data", (chunk: Buffer) => {
        if (size < MAX_BODY) chunks.push(chunk);
        size += chunk.length;
      });
      stream.on("end", () => {
        resolve({
          status,
          headers: responseHeaders,
          body: Buffer.concat(chunks).subarray(0, MAX_BODY).toString("utf8"),
        });
      });
      stream.on("error", (error) => reject(new ProviderUnreachableError(`${this.origin}: ${error.message}`)));
      stream.end(body);
    });
  }

  /** Closes the connection; later requests fail. */
  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  private connected(): ClientHttp2Session {
    if (this.closed) throw new ProviderUnreachableError(`${this.origin}: closed`);
    const current = this.session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = connect(this.origin, this.options.ca !== undefined ? { ca: this.options.ca } : {});
    // Without a listener a connection error would be thrown from the event emitter; the
    // requests on the session fail on their own.
    session.on("error", () => this.drop(session));
    session.on("goaway", () => this.drop(session));
    session.on("close", () => this.drop(session));
    this.session = session;
    return session;
  }

  private drop(session: ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
  }
}
