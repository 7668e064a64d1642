import { randomBytes, toHex } from "./bytes.js";
import { decodeAll, encodeWith } from "./codec.js";
import { FutureTimestampError, InvalidInputError, ReplayError, StaleTimestampError } from "./errors.js";
import { SIGNATURE_LENGTH, type SigningKey, type VerifyingKey } from "./signature.js";

/**
 * A signed envelope `{tbs, signature}`: the exact signed bytes travel (never a re-encoding). The
 * tbs carries a timestamp and a random nonce next to the payload, so a verifier can refuse stale
 * requests (outside a window) and replays (same nonce inside the window).
 */
export interface SignedEnvelope {
  tbs: Uint8Array;
  signature: Uint8Array;
}

/** The verified content of an envelope. */
export interface OpenedEnvelope {
  payload: Uint8Array;
  /** Signing time, milliseconds since the Unix epoch. */
  timestamp: number;
  /** 16 random bytes, unique per envelope: the replay-cache key. */
  nonce: Uint8Array;
}

/** How far an envelope's timestamp may lie in the past (`maxAgeMs`) and future (`maxFutureSkewMs`). */
export interface EnvelopeWindow {
  maxAgeMs: number;
  maxFutureSkewMs: number;
}

/** Five minutes back, one minute ahead. */
export const DEFAULT_ENVELOPE_WINDOW: EnvelopeWindow = { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 };

const ENVELOPE_VERSION = 1;

// Envelope signatures use "Envelope " + label, so no envelope label a service picks can collide
// with the label of a protocol object (credentials, connection packages, ...).
function envelopeLabel(label: string): string {
  if (label.length === 0) throw new InvalidInputError("envelope label must not be empty");
  return `Envelope ${label}`;
}
const NONCE_LENGTH = 16;
/** Upper bound of an envelope payload (16 MiB). */
export const MAX_ENVELOPE_PAYLOAD = 16 * 1024 * 1024;

function encodeTbs(payload: Uint8Array, timestamp: number, nonce: Uint8Array): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(ENVELOPE_VERSION)
      .u64(timestamp)
      .fixed(nonce, NONCE_LENGTH, "nonce")
      .vec(payload, 4, "payload", { max: MAX_ENVELOPE_PAYLOAD }),
  );
}

function decodeTbs(tbs: Uint8Array): OpenedEnvelope {
  return decodeAll(tbs, "EnvelopeTbs", (r) => {
    r.version([ENVELOPE_VERSION]);
    const timestamp = r.u64("timestamp");
    const nonce = r.fixed("nonce", NONCE_LENGTH);
    const payload = r.vec("payload", 4, { max: MAX_ENVELOPE_PAYLOAD });
    return { payload, timestamp, nonce };
  });
}

/** Signs `payload` under `label` with the current time (or `now`) and a fresh nonce. */
export function signEnvelope(
  key: SigningKey,
  label: string,
  payload: Uint8Array,
  options: { now?: number } = {},
): SignedEnvelope {
  const tbs = encodeTbs(payload, options.now ?? Date.now(), randomBytes(NONCE_LENGTH));
  return { tbs, signature: key.sign(envelopeLabel(label), tbs) };
}

/**
 * Parses an envelope WITHOUT checking its signature, for when the verifying key must be looked
 * up from the payload (e.g. a client id inside it). Always follow with openEnvelope.
 */
export function readUnverifiedEnvelope(envelope: SignedEnvelope): OpenedEnvelope {
  return decodeTbs(envelope.tbs);
}

/**
 * Verifies the signature under `label`, then the timestamp window, then (if a guard is given)
 * that the nonce was not seen before. Throws BadSignatureError, StaleTimestampError,
 * FutureTimestampError or ReplayError.
 */
export function openEnvelope(
  key: VerifyingKey,
  label: string,
  envelope: SignedEnvelope,
  options: { now?: number; window?: EnvelopeWindow; replayGuard?: ReplayGuard } = {},
): OpenedEnvelope {
  key.verifyOrThrow(envelopeLabel(label), envelope.tbs, envelope.signature, `envelope (${label})`);
  const opened = decodeTbs(envelope.tbs);
  const now = options.now ?? Date.now();
  checkTimestampWindow(opened.timestamp, now, options.window, `envelope (${label})`);
  options.replayGuard?.check(opened.nonce, opened.timestamp, now);
  return opened;
}

/**
 * The replay-window check on its own, for signed requests whose timestamp lives elsewhere (the
 * protos' RequestHeader). Throws StaleTimestampError or FutureTimestampError.
 */
export function checkTimestampWindow(
  timestamp: number,
  now: number,
  window: EnvelopeWindow = DEFAULT_ENVELOPE_WINDOW,
  what = "request",
): void {
  if (timestamp < now - window.maxAgeMs)
    throw new StaleTimestampError(`${what} signed ${now - timestamp} ms ago`);
  if (timestamp > now + window.maxFutureSkewMs) {
    throw new FutureTimestampError(`${what} signed ${timestamp - now} ms in the future`);
  }
}

/** Encodes an envelope as one byte string (when it is nested inside another structure). */
export function encodeEnvelope(envelope: SignedEnvelope): Uint8Array {
  return encodeWith((w) =>
    w
      .vec(envelope.tbs, 4, "tbs", { max: MAX_ENVELOPE_PAYLOAD + 64 })
      .fixed(envelope.signature, SIGNATURE_LENGTH, "signature"),
  );
}

/** Decodes encodeEnvelope's output. */
export function decodeEnvelope(bytes: Uint8Array): SignedEnvelope {
  return decodeAll(bytes, "SignedEnvelope", (r) => ({
    tbs: r.vec("tbs", 4, { max: MAX_ENVELOPE_PAYLOAD + 64 }),
    signature: r.fixed("signature", SIGNATURE_LENGTH),
  }));
}

/**
 * Remembers envelope nonces for the length of the window, so one signed request cannot be used
 * twice. Bounded: past `maxEntries` the oldest entries are evicted (they are also the ones about to
 * leave the window). One guard per verifier process; across replicas, dedupe in the database.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number = DEFAULT_ENVELOPE_WINDOW.maxAgeMs +
      DEFAULT_ENVELOPE_WINDOW.maxFutureSkewMs,
    private readonly maxEntries = 100_000,
  ) {
    if (maxEntries < 1) throw new InvalidInputError("maxEntries must be positive");
  }

  /**
   * Throws ReplayError if `nonce` was seen within the window; otherwise records it. For ids that
   * are unique per sender only (the protos' request_id), pass sender ‖ id.
   */
  check(nonce: Uint8Array, timestamp: number, now: number): void {
    this.evict(now);
    const id = toHex(nonce);
    if (this.seen.has(id)) throw new ReplayError("envelope already used");
    this.seen.set(id, Math.max(timestamp, now));
    if (this.seen.size > this.maxEntries) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** Number of remembered nonces. */
  get size(): number {
    return this.seen.size;
  }

  private evict(now: number): void {
    // Insertion order is roughly time order; stop at the first entry still inside the window.
    for (const [id, at] of this.seen) {
      if (at >= now - this.windowMs) break;
      this.seen.delete(id);
    }
  }
}
