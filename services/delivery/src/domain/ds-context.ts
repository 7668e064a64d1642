import type { CiphersuiteImpl } from "ts-mls";

/** What the pure domain logic needs from its surroundings. */
export interface DsContext {
  /** The MLS ciphersuite implementation (Phoenix: suite 1 on node:crypto). */
  cipherSuite: CiphersuiteImpl;
  /** Clock in milliseconds since the Unix epoch (injected so tests can move time). */
  now: () => number;
  /** This homeserver's domain: groups of other domains are refused. */
  domain: string;
  /** A client that has not committed for this long is proposed for removal. */
  clientInactivityMs: number;
}
