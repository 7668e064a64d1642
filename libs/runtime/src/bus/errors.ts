/** Errors both bus implementations throw for the same situations. */

/** A subject or pattern that NATS would refuse (empty token, misplaced wildcard, whitespace). */
export class InvalidSubjectError extends Error {
  override readonly name = "InvalidSubjectError";
}

/** No stream captures the subject of a publish, or a consumer names a stream that does not exist. */
export class StreamNotFoundError extends Error {
  override readonly name = "StreamNotFoundError";
}

/** A stream definition conflicts with another stream (overlapping subjects) or is invalid. */
export class StreamConfigError extends Error {
  override readonly name = "StreamConfigError";
}

/** Options of a publish or consumer that cannot be honoured (empty dedupe id, bad limits). */
export class BusOptionsError extends Error {
  override readonly name = "BusOptionsError";
}

/** The bus was closed; nothing more can be published or consumed through it. */
export class BusClosedError extends Error {
  override readonly name = "BusClosedError";
}

/**
 * A publish refused because its stream holds `maxBytes`/`maxMsgs` already (the backstop):
 * nothing was stored; publish again once consumers caught up.
 */
export class StreamFullError extends Error {
  override readonly name = "StreamFullError";
}
