import type { common } from "@phoenix/proto";
import type { BidiCall } from "@phoenix/wire";

/** A live queue listener; `stop()` ends it and waits until it has. */
export interface Listener {
  stop(): Promise<void>;
}

/** How one queue is listened to (QS queue or AS connection queue: the same protocol). */
export interface QueueStream<Req, Res> {
  open(): BidiCall<Req, Res>;
  /** The signed `init` request, from the next unprocessed sequence number. */
  init(): Promise<Req>;
  ack(upTo: bigint): Req;
  /** The event of a response. */
  event(res: Res): { $case: "message"; value: common.QueueMessage } | { $case: "empty" } | undefined;
  /** Processes one message (persisting it) before it is acked. */
  handle(message: common.QueueMessage): Promise<void>;
}

/** Options of a listener. */
export interface ListenOptions {
  /** Called after something was processed. */
  onChange?: () => void;
  /** Called when the stream failed (it is re-opened). */
  onError?: (error: Error) => void;
  /** Consecutive failed attempts after which the listener gives up (default 1000). */
  maxReconnectAttempts?: number;
  /** Longest pause between reconnects (default 5 s; backoff starts at 100 ms). */
  maxBackoffMs?: number;
  /**
   * PhoenixClient.listen: longest age of this client's keys in a conversation before the
   * listener refreshes them (default one week; 0 turns periodic key updates off).
   */
  keyUpdateMaxAgeMs?: number;
}

/**
 * Keeps a Listen stream open: processes and acks each message, and re-opens the stream after a
 * failure with exponential backoff. Unacked messages come again on the next stream; the handler
 * skips what it already processed (sequence numbers), so nothing is processed twice.
 */
export function runQueueListener<Req, Res>(
  stream: QueueStream<Req, Res>,
  options: ListenOptions = {},
): Listener {
  let stopped = false;
  let call: BidiCall<Req, Res> | undefined;
  let wake: (() => void) | undefined;
  const maxAttempts = options.maxReconnectAttempts ?? 1000;
  const maxBackoff = options.maxBackoffMs ?? 5000;
  const loop = async (): Promise<void> => {
    for (let failures = 0; !stopped && failures < maxAttempts; ) {
      try {
        call = stream.open();
        await call.send(await stream.init());
        for await (const res of call.responses) {
          failures = 0;
          const event = stream.event(res);
          if (event?.$case === "message") {
            await stream.handle(event.value);
            await call.send(stream.ack(event.value.sequenceNumber + 1n));
            options.onChange?.();
          }
        }
      } catch (error) {
        if (stopped) return;
        options.onError?.(error as Error);
      } finally {
        call?.cancel();
        call = undefined;
      }
      if (stopped) return;
      failures++;
      const delay = Math.min(100 * 2 ** Math.min(failures, 16), maxBackoff);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  };
  const done = loop();
  return {
    async stop() {
      stopped = true;
      call?.cancel();
      wake?.();
      await done;
    },
  };
}
