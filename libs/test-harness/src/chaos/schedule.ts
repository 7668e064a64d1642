// The chaos run's fault schedule: a pure function of the seed, so a failing run is replayed with
// the same faults at the same offsets (the processes' own timing still varies from run to run).
import { Prng } from "../random-prng.js";

/** One fault, `atMs` after the chaos starts; the thing is back `downMs` later. */
export type ChaosEvent =
  | { atMs: number; kind: "kill"; target: string; downMs: number }
  | { atMs: number; kind: "restart-nats"; downMs: number }
  | { atMs: number; kind: "restart-postgres"; downMs: number }
  | { atMs: number; kind: "cut-link"; downMs: number };

/** What {@link chaosSchedule} draws from. */
export interface ScheduleOptions {
  seed: number;
  /** The window the faults fall in. */
  durationMs: number;
  /** SIGKILLs, spread evenly over the window with seeded jitter. */
  kills: number;
  /** Process names a kill picks from (uniformly). */
  targets: readonly string[];
  /** Infrastructure faults, once each: NATS restart, Postgres crash, federation link cut. */
  nats?: boolean;
  postgres?: boolean;
  link?: boolean;
}

/** The faults of a run, in time order. */
export function chaosSchedule(options: ScheduleOptions): ChaosEvent[] {
  const prng = new Prng(options.seed);
  const events: ChaosEvent[] = [];
  const slot = options.durationMs / Math.max(1, options.kills);
  for (let i = 0; i < options.kills; i++) {
    events.push({
      atMs: Math.round(i * slot + prng.int(0, Math.floor(slot * 0.8))),
      kind: "kill",
      target: prng.pick(options.targets),
      // Short: a supervisor (Kubernetes, systemd) restarts a crashed process within seconds.
      downMs: prng.int(200, 2500),
    });
  }
  // Each infrastructure fault in its own part of the window, so their effects can be told apart.
  const at = (from: number, to: number) =>
    Math.round(options.durationMs * (from + (to - from) * (prng.int(0, 999) / 1000)));
  if (options.nats) events.push({ atMs: at(0.2, 0.3), kind: "restart-nats", downMs: prng.int(500, 3000) });
  if (options.link) events.push({ atMs: at(0.4, 0.5), kind: "cut-link", downMs: prng.int(2000, 6000) });
  if (options.postgres)
    events.push({ atMs: at(0.6, 0.7), kind: "restart-postgres", downMs: prng.int(500, 3000) });
  return events.sort((a, b) => a.atMs - b.atMs);
}
