import type { Reader, Writer } from "../codec.js";
import { ExpiredCredentialError, InvalidInputError, NotYetValidCredentialError } from "../errors.js";

/** A validity period, both ends inclusive, in milliseconds since the Unix epoch. */
export interface Expiration {
  notBefore: number;
  notAfter: number;
}

/** A validity period from `now` for `durationMs`. */
export function expirationFrom(now: number, durationMs: number): Expiration {
  return { notBefore: now, notAfter: now + durationMs };
}

/** Writes notBefore ‖ notAfter as u64. */
export function writeExpiration(w: Writer, e: Expiration): void {
  if (e.notBefore > e.notAfter) throw new InvalidInputError("expiration: notBefore after notAfter");
  w.u64(e.notBefore).u64(e.notAfter);
}

/** Reads an expiration, rejecting inverted periods. */
export function readExpiration(r: Reader): Expiration {
  const notBefore = r.u64("expiration.notBefore");
  const notAfter = r.u64("expiration.notAfter");
  if (notBefore > notAfter) r.fail("expiration", "notBefore after notAfter");
  return { notBefore, notAfter };
}

/** Throws ExpiredCredentialError / NotYetValidCredentialError unless `now` lies in the period. */
export function checkValidAt(e: Expiration, now: number, what: string): void {
  if (now > e.notAfter)
    throw new ExpiredCredentialError(`${what} expired at ${new Date(e.notAfter).toISOString()}`);
  if (now < e.notBefore) {
    throw new NotYetValidCredentialError(`${what} not valid before ${new Date(e.notBefore).toISOString()}`);
  }
}

/** True if `inner` lies within `outer`. */
export function isWithin(inner: Expiration, outer: Expiration): boolean {
  return inner.notBefore >= outer.notBefore && inner.notAfter <= outer.notAfter;
}
