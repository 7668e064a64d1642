import { toHex } from "@phoenix/crypto";
import { events } from "@phoenix/proto";
import type { Bus, Subscription } from "@phoenix/runtime/bus";
import type { QsSubjects } from "../domain/subjects.js";

type Waker = () => void;

interface Entry {
  wakers: Set<Waker>;
  subscription: Promise<Subscription>;
}

/**
 * The Listen streams of this process. A stream registers a waker for its queue; the hub keeps
 * one core-NATS subscription per queue with listeners (subscribed when the first stream of the
 * queue arrives, stopped when the last one leaves), so any replica's enqueue wakes it.
 */
export class ListenerHub {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly bus: Bus,
    private readonly subjects: QsSubjects,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Registers `wake` for the queue; resolves once wake-ups are live. Returns the unregister function. */
  async add(clientId: Uint8Array, wake: Waker): Promise<() => Promise<void>> {
    const subject = this.subjects.queueActivity(toHex(clientId));
    let entry = this.entries.get(subject);
    if (entry === undefined) {
      const wakers = new Set<Waker>();
      const subscription = this.bus.listen(subject, () => {
        for (const w of wakers) w();
      });
      entry = { wakers, subscription };
      this.entries.set(subject, entry);
      subscription.catch(() => this.entries.delete(subject));
    }
    entry.wakers.add(wake);
    await entry.subscription;
    const current = entry;
    return async () => {
      current.wakers.delete(wake);
      if (current.wakers.size === 0 && this.entries.get(subject) === current) {
        this.entries.delete(subject);
        await (await current.subscription).stop().catch(this.onError);
      }
    };
  }

  /** Number of queues with a listener in this process. */
  get size(): number {
    return this.entries.size;
  }

  /** Tells listeners of the queue on every replica that messages up to `latest` are there. */
  async notify(clientId: Uint8Array, latest: bigint): Promise<void> {
    if (this.closed) return;
    const data = events.QueueActivity.encode({ latestSequenceNumber: latest }).finish();
    await this.bus.notify(this.subjects.queueActivity(toHex(clientId)), data);
  }

  /** Stops every subscription. */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map(async (e) => (await e.subscription).stop().catch(this.onError)));
  }
}
