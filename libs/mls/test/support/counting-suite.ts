import type { CiphersuiteImpl } from "ts-mls";

/** Public-key operations one party ran through an MLS ciphersuite. */
export interface AsymmetricCounts {
  /** Ed25519 signatures. */
  sign: number;
  /** Ed25519 verifications. */
  verify: number;
  /** HPKE SealBase (one X25519 key generation + one DH each). */
  hpkeSeal: number;
  /** HPKE OpenBase (one DH each). */
  hpkeOpen: number;
  /** HPKE secret export / import (external init: one KEM encap or decap each). */
  hpkeExport: number;
  /** X25519 key pairs derived from a secret (path secrets to node keys: one base-point multiplication each). */
  derive: number;
  /** Fresh key pairs (X25519 or Ed25519). */
  generate: number;
}

/** The sum of every counted operation. */
export function totalOps(counts: AsymmetricCounts): number {
  return (
    counts.sign +
    counts.verify +
    counts.hpkeSeal +
    counts.hpkeOpen +
    counts.hpkeExport +
    counts.derive +
    counts.generate
  );
}

function zero(): AsymmetricCounts {
  return { sign: 0, verify: 0, hpkeSeal: 0, hpkeOpen: 0, hpkeExport: 0, derive: 0, generate: 0 };
}

/**
 * Test-only: a ciphersuite that runs `inner` and counts its public-key operations. `measure`
 * returns what one call cost; calls measured on the same suite must not overlap.
 */
export class CountingSuite {
  readonly cs: CiphersuiteImpl;
  private counts = zero();

  constructor(inner: CiphersuiteImpl) {
    const bump =
      <A extends unknown[], R>(key: keyof AsymmetricCounts, f: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> => {
        this.counts[key]++;
        return f(...args);
      };
    const { signature, hpke } = inner;
    this.cs = {
      ...inner,
      signature: {
        ...signature,
        sign: bump("sign", signature.sign.bind(signature)),
        verify: bump("verify", signature.verify.bind(signature)),
        keygen: bump("generate", signature.keygen.bind(signature)),
      },
      hpke: {
        ...hpke,
        seal: bump("hpkeSeal", hpke.seal.bind(hpke)),
        open: bump("hpkeOpen", hpke.open.bind(hpke)),
        exportSecret: bump("hpkeExport", hpke.exportSecret.bind(hpke)),
        importSecret: bump("hpkeExport", hpke.importSecret.bind(hpke)),
        deriveKeyPair: bump("derive", hpke.deriveKeyPair.bind(hpke)),
        generateKeyPair: bump("generate", hpke.generateKeyPair.bind(hpke)),
      },
    };
  }

  /** Runs `f` and returns its result with the operations it ran. */
  async measure<T>(f: () => Promise<T>): Promise<{ value: T; counts: AsymmetricCounts }> {
    this.counts = zero();
    const value = await f();
    const counts = this.counts;
    this.counts = zero();
    return { value, counts };
  }
}
