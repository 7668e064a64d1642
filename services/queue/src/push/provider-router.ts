import type { queue } from "@phoenix/proto";
import type { PushNotifier, PushOutcome, PushRequest } from "./notifier.js";

/**
 * Several providers at once: each token names its provider and goes to that provider's
 * notifier; tokens of a provider the operator did not configure go to `fallback` (logged).
 */
export class ProviderRouter implements PushNotifier {
  constructor(
    private readonly providers: ReadonlyMap<queue.PushProvider, PushNotifier>,
    private readonly fallback: PushNotifier,
  ) {}

  notify(token: queue.PushToken, request: PushRequest): Promise<PushOutcome> {
    return (this.providers.get(token.provider) ?? this.fallback).notify(token, request);
  }

  async close(): Promise<void> {
    for (const notifier of new Set([...this.providers.values(), this.fallback])) await notifier.close?.();
  }
}
