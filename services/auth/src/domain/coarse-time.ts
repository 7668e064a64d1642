// Time precision of what the AS stores about users, clients and handles. A fine timestamp in the
// AS database can be joined with one in the QS database (the client registers with both) to link
// a user id to its QS pseudonym, so the AS keeps each time only as fine as its use needs:
//  - when something happened (a client's creation, a revocation, activity): the UTC month;
//  - when something expires (handles, connection packages, client credentials): the UTC hour,
//    rounded so nothing is served past its own validity (packages, credentials: down; handles,
//    whose expiry only frees the name: up);
//  - when a queued connection offer expires: the UTC day (its lifetime is whole days).
// AS key material (as_credentials) and the cache of other domains' public credentials keep exact
// times: they say nothing about a user.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The start of the UTC month of `ms`. */
export function monthOf(ms: number): Date {
  const date = new Date(ms);
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}

/** `ms` rounded down to the whole UTC hour. */
export function hourFloor(ms: number): Date {
  return new Date(Math.floor(ms / HOUR) * HOUR);
}

/** `ms` rounded up to the whole UTC hour. */
export function hourCeil(ms: number): Date {
  return new Date(Math.ceil(ms / HOUR) * HOUR);
}

/** `ms` rounded up to the whole UTC day. */
export function dayCeil(ms: number): Date {
  return new Date(Math.ceil(ms / DAY) * DAY);
}
