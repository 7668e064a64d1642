/** What a dependency's owner reports: reachable, or not and why. */
export interface DependencyState {
  readonly up: boolean;
  /** Why it is down (an error message; never a secret). */
  readonly reason?: string;
}

/** The handle a dependency's watcher reports through. */
export interface DependencyHandle {
  readonly name: string;
  up(): void;
  down(reason: string): void;
  readonly state: DependencyState;
}

/**
 * A check run on every readiness request (the edge gateway asks its upstreams' gRPC health):
 * `ready` decides, `detail` is shown in the `/readyz` body under the check's name.
 */
export type ReadinessCheck = (signal: AbortSignal) => Promise<{ ready: boolean; detail: unknown }>;

/** The `/readyz` answer. */
export interface ReadinessReport {
  readonly ready: boolean;
  /** The JSON body: `status` ("ready" / "not ready") plus what explains it. */
  readonly body: Record<string, unknown>;
}

/** How long a readiness check may take before it counts as not ready (default 5 s). */
const DEFAULT_CHECK_TIMEOUT_MS = 5000;

/**
 * One process's readiness: ready once it `started`, while every dependency (database pool, bus
 * connection) is up and it is not shutting down. Watchers report dependencies as they come and
 * go; `onChange` listeners (the gRPC health status) hear every flip. `/readyz` also runs the
 * registered checks.
 */
export class Readiness {
  readonly #dependencies = new Map<string, DependencyState>();
  readonly #checks = new Map<string, ReadinessCheck>();
  readonly #listeners = new Set<(ready: boolean) => void>();
  readonly #checkTimeoutMs: number;
  #started = false;
  #shuttingDown = false;
  #last = false;

  constructor(options: { checkTimeoutMs?: number } = {}) {
    this.#checkTimeoutMs = options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  }

  /**
   * Registers a dependency, down until its watcher reports it up; a second call with the same
   * name returns a handle on the same entry.
   */
  dependency(name: string): DependencyHandle {
    if (!this.#dependencies.has(name))
      this.#dependencies.set(name, { up: false, reason: "not connected yet" });
    const set = (state: DependencyState) => {
      this.#dependencies.set(name, state);
      this.#emit();
    };
    const entries = this.#dependencies;
    return {
      name,
      up: () => set({ up: true }),
      down: (reason) => set({ up: false, reason }),
      get state() {
        return entries.get(name) ?? { up: false };
      },
    };
  }

  /** Adds a check that `/readyz` runs (bounded by the check timeout; a failure counts as not ready). */
  addCheck(name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check);
  }

  /** The process serves: from now on, ready whenever its dependencies are. */
  markStarted(): void {
    this.#started = true;
    this.#emit();
  }

  /** Shutdown began: not ready from now on, whatever the dependencies say. */
  markShuttingDown(): void {
    this.#shuttingDown = true;
    this.#emit();
  }

  /** Started, not shutting down, every dependency up (checks are not run here). */
  get ready(): boolean {
    if (!this.#started || this.#shuttingDown) return false;
    for (const state of this.#dependencies.values()) if (!state.up) return false;
    return true;
  }

  /** Called on every change of {@link ready}; returns the unsubscribe function. */
  onChange(listener: (ready: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs the checks and reports readiness with the state of every dependency and check. */
  async report(): Promise<ReadinessReport> {
    const body: Record<string, unknown> = {};
    let ready = this.ready;
    if (this.#shuttingDown) body.reason = "shutting down";
    else if (!this.#started) body.reason = "starting";
    if (this.#dependencies.size > 0) {
      body.dependencies = Object.fromEntries(
        [...this.#dependencies].map(([name, state]) => [
          name,
          state.up ? "up" : `down${state.reason ? `: ${state.reason}` : ""}`,
        ]),
      );
    }
    const results = await Promise.all(
      [...this.#checks].map(async ([name, check]) => [name, await this.#runCheck(check)] as const),
    );
    for (const [name, result] of results) {
      if (!result.ready) ready = false;
      body[name] = result.detail;
    }
    return { ready, body: { status: ready ? "ready" : "not ready", ...body } };
  }

  async #runCheck(check: ReadinessCheck): Promise<{ ready: boolean; detail: unknown }> {
    const signal = AbortSignal.timeout(this.#checkTimeoutMs);
    try {
      return await Promise.race([
        check(signal),
        new Promise<never>((_, reject) =>
          signal.addEventListener("abort", () => reject(new Error("check timed out")), { once: true }),
        ),
      ]);
    } catch (error) {
      return { ready: false, detail: error instanceof Error ? error.message : String(error) };
    }
  }

  #emit(): void {
    const ready = this.ready;
    if (ready === this.#last) return;
    this.#last = ready;
    for (const listener of this.#listeners) listener(ready);
  }
}
