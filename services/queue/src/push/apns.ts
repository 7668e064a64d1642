import { createPrivateKey, type KeyObject } from "node:crypto";
import { queue } from "@phoenix/proto";
import { Http2Origin } from "./http2-client.js";
import { signJwt } from "./jwt.js";
import type { PushNotifier, PushOutcome, PushRequest } from "./notifier.js";
import { type Attempt, ConcurrencyLimit, type ProviderOptions, retryAfterMs, withRetries } from "./retry.js";

/** APNs hosts by environment. */
export const APNS_ORIGINS = {
  production: "https://api.push.apple.com",
  sandbox: "https://api.sandbox.push.apple.com",
} as const;

/** The text a device shows if its notification service extension does not replace it. */
export const APNS_ALERT_LOC_KEY = "PHOENIX_QUEUE_ACTIVITY";

/** A device token as APNs issues it: hex (32 bytes today; Apple reserves longer ones). */
const DEVICE_TOKEN = /^(?:[0-9a-fA-F]{2}){16,256}$/;

/** Provider tokens are reused this long: Apple refuses tokens older than an hour. */
const TOKEN_REUSE_MS = 50 * 60_000;
/** Apple answers TooManyProviderTokenUpdates to a new token sooner than this after the last. */
const TOKEN_MIN_AGE_MS = 20 * 60_000;

/** APNs refused a push for a reason retrying does not cure (configuration, payload). */
export class ApnsError extends Error {
  override readonly name = "ApnsError";
}

export interface ApnsNotifierOptions extends ProviderOptions {
  /** The .p8 signing key (PKCS#8 PEM, P-256) of the Apple developer account. */
  key: string | KeyObject;
  /** The key's 10-character id (JWT header `kid`). */
  keyId: string;
  /** The team id (JWT claim `iss`). */
  teamId: string;
  /** The app's bundle id (`apns-topic`). */
  topic: string;
  /**
   * "alert" (default): a visible push with mutable-content, which the app's notification service
   * extension fills after fetching its queue; "background": a silent content-available push.
   */
  pushType?: "alert" | "background";
}

/**
 * Apple Push Notification service over HTTP/2 with token-based authentication: every request
 * carries a provider token, an ES256 JWT (`kid` key id, `iss` team id, `iat`) reused for 50
 * minutes. Unregistered (410) and bad device tokens (400 BadDeviceToken, DeviceTokenNotForTopic)
 * answer "unregistered"; 429 and 5xx are retried with backoff; 403 ExpiredProviderToken gets a
 * new provider token once it is old enough for Apple to accept a new one.
 */
export class ApnsNotifier implements PushNotifier {
  private readonly http: Http2Origin;
  private readonly key: KeyObject;
  private readonly now: () => number;
  private readonly limit: ConcurrencyLimit;
  private provider: { jwt: string; issuedAt: number } | undefined;

  constructor(private readonly options: ApnsNotifierOptions) {
    this.key = typeof options.key === "string" ? createPrivateKey(options.key) : options.key;
    if (this.key.asymmetricKeyType !== "ec" || this.key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new ApnsError("the APNs signing key must be a P-256 (ES256) private key");
    }
    this.now = options.now ?? Date.now;
    this.limit = new ConcurrencyLimit(options.maxInFlight ?? 100);
    this.http = new Http2Origin(options.origin ?? APNS_ORIGINS.production, {
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  async notify(token: queue.PushToken, request: PushRequest): Promise<PushOutcome> {
    if (token.provider !== queue.PushProvider.PUSH_PROVIDER_APNS) {
      throw new ApnsError(`not an APNs token: ${queue.pushProviderToJSON(token.provider)}`);
    }
    // Goes into the request path: anything but hex is no device token.
    if (!DEVICE_TOKEN.test(token.token)) return "unregistered";
    return this.limit.run(() =>
      withRetries(this.options.retry ?? {}, () => this.attempt(token.token, request)),
    );
  }

  async close(): Promise<void> {
    this.http.close();
  }

  private async attempt(deviceToken: string, request: PushRequest): Promise<Attempt<PushOutcome>> {
    const jwt = this.providerToken();
    const background = this.options.pushType === "background";
    const ttl = this.options.ttlMs ?? 24 * 3600_000;
    const response = await this.http.request(
      "POST",
      `/3/device/${deviceToken}`,
      {
        authorization: `bearer ${jwt}`,
        "apns-topic": this.options.topic,
        "apns-push-type": background ? "background" : "alert",
        // Apple requires priority 5 for background pushes.
        "apns-priority": background ? "5" : "10",
        "apns-expiration": ttl === 0 ? "0" : String(Math.floor((this.now() + ttl) / 1000)),
        "apns-collapse-id": request.collapseId,
        "content-type": "application/json",
      },
      JSON.stringify(apnsPayload(background)),
    );
    if (response.status === 200) return { done: "sent" };
    const reason = apnsReason(response.body);
    if (response.status === 410) return { done: "unregistered" };
    if (response.status === 400 && (reason === "BadDeviceToken" || reason === "DeviceTokenNotForTopic")) {
      return { done: "unregistered" };
    }
    if (response.status === 403 && reason === "ExpiredProviderToken" && this.renewProviderToken(jwt)) {
      return { retry: "APNs: ExpiredProviderToken", retryAfterMs: 0 };
    }
    if (response.status === 429 || response.status >= 500) {
      const after = retryAfterMs(response.headers["retry-after"], this.now());
      return {
        retry: `APNs ${response.status} ${reason}`,
        ...(after !== undefined ? { retryAfterMs: after } : {}),
      };
    }
    throw new ApnsError(`APNs refused the push: ${response.status} ${reason}`);
  }

  /** The current provider token, a new one when it is 50 minutes old. */
  private providerToken(): string {
    const now = this.now();
    if (this.provider === undefined || now - this.provider.issuedAt >= TOKEN_REUSE_MS) {
      const jwt = signJwt(
        "ES256",
        this.key,
        { kid: this.options.keyId },
        { iss: this.options.teamId, iat: Math.floor(now / 1000) },
      );
      this.provider = { jwt, issuedAt: now };
    }
    return this.provider.jwt;
  }

  /**
   * After ExpiredProviderToken for `used`: drops it so the retry signs a new one, unless it is
   * younger than Apple's 20-minute minimum (then a new one would be refused too: the clock is
   * off). True when the retry may go ahead.
   */
  private renewProviderToken(used: string): boolean {
    if (this.provider === undefined || this.provider.jwt !== used) return true;
    if (this.now() - this.provider.issuedAt < TOKEN_MIN_AGE_MS) return false;
    this.provider = undefined;
    return true;
  }
}

/**
 * The whole payload: no message, sender, group or count. An alert push shows a fixed,
 * app-localised text unless the app's notification service extension (mutable-content) fetches
 * the queue and replaces it; a background push only wakes the app.
 */
export function apnsPayload(background: boolean): object {
  return background
    ? { aps: { "content-available": 1 } }
    : { aps: { alert: { "loc-key": APNS_ALERT_LOC_KEY }, "mutable-content": 1 } };
}

function apnsReason(body: string): string {
  try {
    const parsed = JSON.parse(body) as { reason?: unknown };
    return typeof parsed.reason === "string" ? parsed.reason : "";
  } catch {
    return "";
  }
}
