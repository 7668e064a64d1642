import { queue } from "@phoenix/proto";
import type { Logger } from "@phoenix/runtime/log";

/**
 * Sends a push notification to a client that has no live listener. Notifications carry no
 * content: they only tell the device to fetch its queue. FCM/APNs notifiers plug in here.
 */
export interface PushNotifier {
  notify(token: queue.PushToken): Promise<void>;
}

/** Logs that a notification would be sent (default; never logs the token itself). */
export class LoggingNotifier implements PushNotifier {
  constructor(private readonly logger: Logger) {}

  async notify(token: queue.PushToken): Promise<void> {
    this.logger.info({ provider: queue.pushProviderToJSON(token.provider) }, "push notification");
  }
}

/** The webhook URL is not acceptable (wrong scheme, not a URL). */
export class WebhookUrlError extends Error {
  override readonly name = "WebhookUrlError";
}

export interface WebhookNotifierOptions {
  /** Accept http:// URLs (development only; default https only). */
  allowHttp?: boolean;
  /** Per-request timeout (default 5 s). */
  timeoutMs?: number;
  /** Falls back to this for providers other than webhook (default: ignore them). */
  fallback?: PushNotifier;
}

/**
 * POSTs an empty JSON notification to the token's URL for PUSH_PROVIDER_WEBHOOK tokens
 * (self-hosted notifiers, tests). Other providers go to `fallback`.
 */
export class WebhookNotifier implements PushNotifier {
  constructor(private readonly options: WebhookNotifierOptions = {}) {}

  async notify(token: queue.PushToken): Promise<void> {
    if (token.provider !== queue.PushProvider.PUSH_PROVIDER_WEBHOOK) {
      await this.options.fallback?.notify(token);
      return;
    }
    const url = new URL(token.token);
    if (url.protocol !== "https:" && !(this.options.allowHttp && url.protocol === "http:")) {
      throw new WebhookUrlError(`webhook scheme ${url.protocol} is not allowed`);
    }
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "queue_activity" }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      redirect: "error",
    });
    await response.body?.cancel();
    if (!response.ok) throw new Error(`webhook answered ${response.status}`);
  }
}
