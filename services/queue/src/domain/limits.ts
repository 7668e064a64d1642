/** Field limits documented in proto/phoenix/queue/v1/queue.proto. */
export const LIMITS = {
  sealedPushToken: 4096,
  pushTokenText: 2048,
  addPackage: 16 * 1024,
  addPackagesPerPublish: 100,
  sealedQueueConfig: 1024,
  /** QueueMessage ciphertext: 1 MiB + 1 KiB. */
  queuePayload: 1024 * 1024 + 1024,
  domain: 253,
} as const;

/** Ed25519 and X25519 public keys, friendship tokens. */
export const KEY_LENGTH = 32;
/** Replaced client auth keys kept per client record for its sealed configs (the newest ones). */
export const MAX_PREVIOUS_AUTH_KEYS = 4;
/** QS user and client ids. */
export const ID_LENGTH = 16;

/** The first instant of the month of `ms` (UTC): activity times are kept at month precision. */
export function activityMonth(ms: number): Date {
  const d = new Date(ms);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

export const HOUR = 3600_000;
export const DAY = 24 * HOUR;

/**
 * The step a stored time derived from `intervalMs` is rounded to: 1/24 of the interval (so the
 * rule it serves stays within ~4 % of its setting), between a second and `maxStep`. Times the
 * QS stores are coarse on purpose: exact ones let a snapshot pair QS records with AS records
 * and date every request (issue #13).
 */
export function coarseStep(intervalMs: number, maxStep = HOUR): number {
  return Math.min(maxStep, Math.max(1000, Math.floor(intervalMs / 24)));
}

/** `ms` rounded down to a multiple of `step` (epoch-aligned). */
export function floorTo(ms: number, step: number): Date {
  return new Date(Math.floor(ms / step) * step);
}

/** `ms` rounded up to a multiple of `step` (epoch-aligned). */
export function ceilTo(ms: number, step: number): Date {
  return new Date(Math.ceil(ms / step) * step);
}
