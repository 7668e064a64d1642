import { UnavailableError } from "../errors/rpc-errors.js";

interface TrackedCall {
  readonly controller: AbortController;
  readonly onShutdown: "drain" | "abort";
}

/**
 * The handlers currently running. Shutdown waits on it rather than on the transport alone: a
 * handler can outlive its response (a deadline answered the client while the handler still
 * holds a db transaction), and databases must not close under it.
 */
export class CallTracker {
  private readonly calls = new Set<TrackedCall>();
  private readonly idleWaiters = new Set<() => void>();
  private shuttingDown = false;

  get size(): number {
    return this.calls.size;
  }

  /** Registers a running handler; the returned function marks it settled. */
  add(controller: AbortController, onShutdown: "drain" | "abort"): () => void {
    const call: TrackedCall = { controller, onShutdown };
    this.calls.add(call);
    if (this.shuttingDown && onShutdown === "abort") abortForShutdown(call);
    return () => {
      this.calls.delete(call);
      if (this.calls.size === 0) for (const wake of [...this.idleWaiters]) wake();
    };
  }

  /** Aborts the calls that asked to be aborted on shutdown, and any that start from now on. */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const call of this.calls) if (call.onShutdown === "abort") abortForShutdown(call);
  }

  /** Aborts every running call (end of the grace period). */
  abortAll(): void {
    for (const call of this.calls) abortForShutdown(call);
  }

  /** Resolves true once no handler runs, or false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.calls.size === 0) return true;
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve(this.calls.size === 0);
      };
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
      this.idleWaiters.add(wake);
    });
  }

  /** Wakes every `idle()` waiter now (a forced shutdown stops waiting). */
  wakeAll(): void {
    for (const wake of [...this.idleWaiters]) wake();
  }
}

function abortForShutdown(call: TrackedCall): void {
  if (!call.controller.signal.aborted) call.controller.abort(new UnavailableError("server is shutting down"));
}
