import { lookup } from "node:dns/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { queue } from "@phoenix/proto";
import type { Logger } from "@phoenix/runtime/log";
import { WebhookAddressPolicy } from "../domain/webhook-address.js";

/** What a push achieved: sent (or handed on), or the provider says the token is dead. */
export type PushOutcome = "sent" | "unregistered";

/** What a push says besides its token: only which queue it is for, pseudonymously. */
export interface PushRequest {
  /**
   * Stable per queue, unlinkable to the queue's id without the QS storage key (a keyed hash):
   * the provider's collapse id / collapse key, so a device keeps one pending push per queue.
   */
  collapseId: string;
}

/**
 * Sends a push notification to a client that has no live listener. Notifications carry no
 * content: they only tell the device to fetch its queue (no message, sender or group).
 * "unregistered" makes the QS delete the stored token; a thrown error is logged.
 */
export interface PushNotifier {
  notify(token: queue.PushToken, request: PushRequest): Promise<PushOutcome>;
  /** Closes provider connections (at shutdown). */
  close?(): Promise<void>;
}

/** Logs that a notification would be sent (default; never logs the token itself). */
export class LoggingNotifier implements PushNotifier {
  constructor(private readonly logger: Logger) {}

  async notify(token: queue.PushToken): Promise<PushOutcome> {
    this.logger.info({ provider: queue.pushProviderToJSON(token.provider) }, "push notification");
    return "sent";
  }
}

/** The webhook URL is not acceptable (wrong scheme, not a URL). */
export class WebhookUrlError extends Error {
  override readonly name = "WebhookUrlError";
}

/**
 * The webhook's host is or resolves to an address the QS must not reach (loopback, private,
 * link-local, metadata, …) and is not allowlisted. The message names the host, never the URL's
 * path, query or credentials (they usually hold the device's secret).
 */
export class WebhookRefusedError extends Error {
  override readonly name = "WebhookRefusedError";
}

/** One resolved address of a host. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses (the system resolver by default; a stub in tests). */
export type WebhookResolver = (host: string) => Promise<ResolvedAddress[]>;

/** The system resolver (getaddrinfo, every address, in the resolver's order). */
export const systemResolver: WebhookResolver = async (host) => {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface WebhookNotifierOptions {
  /** Accept http:// URLs (development only; default https only). */
  allowHttp?: boolean;
  /** Per-request timeout (default 5 s). */
  timeoutMs?: number;
  /** Falls back to this for providers other than webhook (default: ignore them). */
  fallback?: PushNotifier;
  /** Which addresses may be reached (default: public unicast only, nothing allowlisted). */
  policy?: WebhookAddressPolicy;
  /** Host name resolution (default: the system resolver). */
  resolver?: WebhookResolver;
  /** Extra trusted CA certificates (PEM) for the webhook's TLS (tests, private CAs). */
  ca?: string | Buffer;
  /** Where refusals are logged (host and reason only). */
  logger?: Logger;
}

/**
 * POSTs an empty JSON notification to the token's URL for PUSH_PROVIDER_WEBHOOK tokens
 * (self-hosted notifiers, tests). Other providers go to `fallback`.
 *
 * SSRF: the client chooses the URL. The host is resolved once, every address it resolves to is
 * checked against the {@link WebhookAddressPolicy}, and the connection goes to the checked address
 * (a pinned `lookup`), so a DNS answer that changes between check and connect (rebinding) cannot
 * reach a refused address. TLS still uses the URL's host name for SNI and certificate
 * verification. Redirects are not followed.
 */
export class WebhookNotifier implements PushNotifier {
  private readonly policy: WebhookAddressPolicy;
  private readonly resolver: WebhookResolver;

  constructor(private readonly options: WebhookNotifierOptions = {}) {
    this.policy = options.policy ?? new WebhookAddressPolicy();
    this.resolver = options.resolver ?? systemResolver;
  }

  async notify(token: queue.PushToken, request: PushRequest): Promise<PushOutcome> {
    if (token.provider !== queue.PushProvider.PUSH_PROVIDER_WEBHOOK) {
      return (await this.options.fallback?.notify(token, request)) ?? "sent";
    }
    const url = new URL(token.token);
    if (url.protocol !== "https:" && !(this.options.allowHttp && url.protocol === "http:")) {
      throw new WebhookUrlError(`webhook scheme ${url.protocol} is not allowed`);
    }
    const target = await this.pinnedAddress(url);
    const secure = url.protocol === "https:";
    const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
      // Whatever the socket asks for, it gets the address that was checked.
      if (lookupOptions.all) callback(null, [{ address: target.address, family: target.family }]);
      else callback(null, target.address, target.family);
    };
    const status = await new Promise<number>((resolve, reject) => {
      const request = (secure ? httpsRequest : httpRequest)(
        {
          protocol: url.protocol,
          hostname: url.hostname.replace(/^\[|\]$/g, ""),
          port: url.port === "" ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: "POST",
          headers: { "content-type": "application/json" },
          lookup: pinned,
          // No pooled socket outlives its check.
          agent: false,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
          ...(secure && this.options.ca !== undefined ? { ca: this.options.ca } : {}),
        },
        (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(JSON.stringify({ type: "queue_activity" }));
    });
    if (status < 200 || status >= 300) throw new Error(`webhook answered ${status}`);
    return "sent";
  }

  /** Resolves the URL's host once and returns the address to connect to, or refuses. */
  private async pinnedAddress(url: URL): Promise<ResolvedAddress> {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const literal = isIP(host);
    const addresses: ResolvedAddress[] =
      literal !== 0 ? [{ address: host, family: literal === 6 ? 6 : 4 }] : await this.resolver(host);
    const refused = addresses.find((a) => !this.policy.allowsAddress(host, a.address));
    if (addresses.length === 0 || refused !== undefined) {
      // Host and address only: the path and query of a webhook URL are the device's secret.
      this.options.logger?.warn(
        { host, address: refused?.address },
        "push webhook refused: the host resolves to a private, loopback or reserved address",
      );
      throw new WebhookRefusedError(
        addresses.length === 0
          ? `webhook host ${host} has no address`
          : `webhook host ${host} resolves to a refused address (${refused?.address})`,
      );
    }
    return addresses[0] as ResolvedAddress;
  }
}
