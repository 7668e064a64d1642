import type { IncomingMessage, ServerResponse } from "node:http";
import { REQUEST_ID_KEY } from "@phoenix/runtime/grpc";

/** A configured allowed origin is not `*` or `scheme://host[:port]`. */
export class CorsConfigError extends Error {
  override readonly name = "CorsConfigError";
}

/** The request headers a browser app may send: the ones the REST API reads (and `authorization`). */
export const CORS_ALLOWED_HEADERS = [
  "accept",
  "authorization",
  "content-type",
  "grpc-timeout",
  REQUEST_ID_KEY,
];
/** Response headers a browser app may read beyond the CORS-safelisted ones. */
export const CORS_EXPOSED_HEADERS = [REQUEST_ID_KEY, "retry-after", "allow"];
/** How long a browser may cache a preflight answer (browsers cap it: Chromium at 2 h). */
export const CORS_MAX_AGE_SECONDS = 600;

const ORIGIN_PATTERN = /^([a-z][a-z0-9+.-]*):\/\/([^/?#@\s]+)$/;

/**
 * Normalizes configured allowed origins: `*` alone (any origin), or origins as browsers send them
 * in the `Origin` header (`https://app.example`, `http://localhost:5173`, `capacitor://localhost`:
 * lower-case, default port dropped, a trailing slash tolerated). Throws {@link CorsConfigError}
 * naming the entry's position for anything else (paths, wildcards in hosts, `*` among origins).
 */
export function normalizeAllowedOrigins(entries: readonly string[]): string[] {
  if (entries.includes("*")) {
    if (entries.length > 1) throw new CorsConfigError("`*` allows every origin and must be the only entry");
    return ["*"];
  }
  return entries.map((entry, index) => {
    const candidate = entry.trim().toLowerCase().replace(/\/$/, "");
    const match = ORIGIN_PATTERN.exec(candidate);
    if (!match || candidate.includes("*")) {
      throw new CorsConfigError(`entry ${index + 1} is not an origin (scheme://host[:port], no path)`);
    }
    if (match[1] === "http" || match[1] === "https") {
      try {
        return new URL(candidate).origin;
      } catch {
        throw new CorsConfigError(`entry ${index + 1} is not an origin (scheme://host[:port], no path)`);
      }
    }
    return candidate;
  });
}

/**
 * The gateway's CORS policy for browser apps on other origins. Off (no allowed origins): no CORS
 * header is ever sent, so browsers keep cross-origin pages from reading responses. The same list
 * decides which browser pages may open the WebSocket streams ({@link CorsPolicy.allowsUpgrade}).
 */
export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;
  private readonly allowMethods: string;

  /** `allowedOrigins` as {@link normalizeAllowedOrigins} returns them; `methods` of the REST routes. */
  constructor(allowedOrigins: readonly string[], methods: readonly string[]) {
    const normalized = normalizeAllowedOrigins(allowedOrigins);
    this.any = normalized[0] === "*";
    this.origins = new Set(this.any ? [] : normalized);
    this.allowMethods = [...new Set([...methods, "GET", "HEAD"].map((m) => m.toUpperCase()))]
      .sort()
      .join(", ");
  }

  get enabled(): boolean {
    return this.any || this.origins.size > 0;
  }

  /** Whether a browser page of `origin` may call the API. */
  allows(origin: string): boolean {
    return this.any || this.origins.has(origin.toLowerCase());
  }

  /**
   * Sets the CORS headers of `req`'s response and answers a preflight (`OPTIONS` with
   * `Access-Control-Request-Method`) from an allowed origin with 204; returns true when it did, and
   * the request needs nothing else. A request from an origin not allowed gets no CORS header (only
   * `Vary: Origin`) and goes on as if CORS were off; so does every request while the policy is off.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.enabled) return false;
    // The answer depends on the Origin header: a cache must not hand one origin's answer to another.
    res.setHeader("vary", "Origin");
    const origin = singleHeader(req.headers.origin);
    if (origin === undefined || !this.allows(origin)) return false;
    res.setHeader("access-control-allow-origin", this.any ? "*" : origin);
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (!preflight) {
      res.setHeader("access-control-expose-headers", CORS_EXPOSED_HEADERS.join(", "));
      return false;
    }
    res.setHeader("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    res.setHeader("access-control-allow-methods", this.allowMethods);
    res.setHeader("access-control-allow-headers", CORS_ALLOWED_HEADERS.join(", "));
    res.setHeader("access-control-max-age", String(CORS_MAX_AGE_SECONDS));
    res.statusCode = 204;
    res.setHeader("content-length", "0");
    res.end();
    return true;
  }

  /**
   * Whether a WebSocket upgrade may proceed. Browsers do not apply CORS to WebSockets but always
   * send `Origin`, so the gateway checks it itself (against cross-site WebSocket hijacking): no
   * `Origin` (a native client), an allowed origin, or the gateway's own origin (`Origin` names the
   * `Host` the request went to) pass; any other browser page is refused.
   */
  allowsUpgrade(req: IncomingMessage): boolean {
    const origin = singleHeader(req.headers.origin);
    if (origin === undefined) return true;
    if (this.allows(origin)) return true;
    const host = singleHeader(req.headers.host)?.toLowerCase();
    if (host === undefined) return false;
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  }
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
