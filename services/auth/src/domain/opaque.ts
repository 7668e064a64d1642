// The server side of OPAQUE (RFC 9807) for account passwords, on @serenity-kit/opaque (opaque-ke:
// ristretto255, SHA-512, 3DH). The library speaks base64url strings; the AS keeps and sends the
// protocol's own byte serializations, so this file is the one place that converts.

import { bytesEqual, constantTimeEqual, sha256, toHex } from "@phoenix/crypto";
import * as opaque from "@serenity-kit/opaque";
import { malformed } from "./errors.js";

/** Sizes of the OPAQUE messages and stored objects of this configuration (RFC 9807 §4, §6). */
export const OpaqueSizes = {
  registrationRequest: 32,
  registrationResponse: 64,
  registrationRecord: 192,
  /** KE1: CredentialRequest (blinded element) + AuthRequest (nonce, client key share). */
  credentialRequest: 96,
  /** KE2: CredentialResponse + AuthResponse. */
  credentialResponse: 320,
  /** KE3: the client's MAC. */
  credentialFinalization: 64,
  /** The server setup: OPRF seed, server key pair, the fake record's key pair. */
  serverSetup: 128,
  /** What the server keeps between KE2 and KE3 (expected client MAC and session key). */
  serverLoginState: 128,
} as const;

/** Waits for the library's WebAssembly module; every other function here needs it loaded. */
export function opaqueReady(): Promise<void> {
  return opaque.ready;
}

function encode(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

function decode(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64url"));
}

/** INVALID_ARGUMENT unless `bytes` has exactly `size` bytes. */
export function checkSize(bytes: Uint8Array, size: number, field: string): Uint8Array {
  if (bytes.length !== size) throw malformed(field, `must be ${size} bytes, got ${bytes.length}`);
  return bytes;
}

/** A fresh server setup (random OPRF seed and key pairs) in its serialized form. */
export function createServerSetup(): Uint8Array {
  return decode(opaque.server.createSetup());
}

/**
 * The OPAQUE credential identifier of a user: the OPRF key is derived from the server's seed and
 * this, so one password gives unrelated records for two users.
 */
export function credentialIdentifier(userUuid: Uint8Array, domain: string): string {
  return `${toHex(userUuid)}@${domain}`;
}

/** What the server keeps between StartPasswordLogin and FinishPasswordLogin. */
export interface LoginState {
  userUuid: Uint8Array;
  /** SHA-256 of the record the login was started against; undefined: a fake record (no password). */
  recordHash: Uint8Array | undefined;
  /** The library's ServerLoginState. */
  serverState: Uint8Array;
}

/** The hash that ties a login to the record it started against (a password change ends the login). */
export function recordHash(record: Uint8Array): Uint8Array {
  return sha256(record);
}

/** True when `state` was started against `record` (constant time). */
export function startedAgainst(state: LoginState, record: Uint8Array | undefined): boolean {
  if (state.recordHash === undefined || record === undefined) return false;
  return constantTimeEqual(state.recordHash, recordHash(record));
}

const NO_RECORD = new Uint8Array(32);

/** `userUuid ‖ flag ‖ recordHash ‖ serverState`, the plaintext sealed into `password_logins.state`. */
export function encodeLoginState(state: LoginState): Uint8Array {
  const out = new Uint8Array(16 + 1 + 32 + state.serverState.length);
  out.set(state.userUuid, 0);
  out[16] = state.recordHash === undefined ? 0 : 1;
  out.set(state.recordHash ?? NO_RECORD, 17);
  out.set(state.serverState, 49);
  return out;
}

/** Inverse of {@link encodeLoginState}; undefined for bytes it did not make. */
export function decodeLoginState(bytes: Uint8Array): LoginState | undefined {
  if (bytes.length !== 49 + OpaqueSizes.serverLoginState || (bytes[16] !== 0 && bytes[16] !== 1))
    return undefined;
  const hash = bytes.slice(17, 49);
  if (bytes[16] === 0 && !bytesEqual(hash, NO_RECORD)) return undefined;
  return {
    userUuid: bytes.slice(0, 16),
    recordHash: bytes[16] === 1 ? hash : undefined,
    serverState: bytes.slice(49),
  };
}

/**
 * The AS's OPAQUE server: one server setup (the long-term secret), the three server steps of
 * RFC 9807 on byte messages. Malformed client messages are INVALID_ARGUMENT naming `field`.
 */
export class OpaqueServer {
  private readonly setup: string;

  /** `setup` as made by {@link createServerSetup}; throws when it is not a valid setup. */
  constructor(setup: Uint8Array) {
    if (setup.length !== OpaqueSizes.serverSetup) throw new Error("OPAQUE server setup has the wrong size");
    this.setup = encode(setup);
    opaque.server.getPublicKey(this.setup); // throws on a setup the library cannot read
  }

  /** Registration, server step: the OPRF evaluation of the client's blinded password. */
  registrationResponse(identifier: string, request: Uint8Array, field: string): Uint8Array {
    checkSize(request, OpaqueSizes.registrationRequest, field);
    const response = this.attempt(field, () =>
      opaque.server.createRegistrationResponse({
        serverSetup: this.setup,
        userIdentifier: identifier,
        registrationRequest: encode(request),
      }),
    );
    return decode(response.registrationResponse);
  }

  /**
   * INVALID_ARGUMENT naming `field` unless `record` is a registration record the library reads
   * (checked by starting a throwaway login against it; nothing else verifies a record).
   */
  checkRecord(identifier: string, record: Uint8Array, field: string): Uint8Array {
    checkSize(record, OpaqueSizes.registrationRecord, field);
    const probe = opaque.client.startLogin({ password: "record check" });
    this.attempt(field, () =>
      opaque.server.startLogin({
        serverSetup: this.setup,
        userIdentifier: identifier,
        registrationRecord: encode(record),
        startLoginRequest: probe.startLoginRequest,
      }),
    );
    return record;
  }

  /**
   * Login, server step 1 (KE1 → KE2). Without a record the library answers from a fake record
   * derived from the setup, indistinguishable from a real one (RFC 9807 §10.9).
   */
  startLogin(
    identifier: string,
    record: Uint8Array | undefined,
    request: Uint8Array,
    field: string,
  ): { response: Uint8Array; serverState: Uint8Array } {
    checkSize(request, OpaqueSizes.credentialRequest, field);
    const started = this.attempt(field, () =>
      opaque.server.startLogin({
        serverSetup: this.setup,
        userIdentifier: identifier,
        registrationRecord: record === undefined ? null : encode(record),
        startLoginRequest: encode(request),
      }),
    );
    return { response: decode(started.loginResponse), serverState: decode(started.serverLoginState) };
  }

  /** Login, server step 2: true when KE3 proves knowledge of the password (the client's MAC verifies). */
  finishLogin(serverState: Uint8Array, finalization: Uint8Array): boolean {
    try {
      opaque.server.finishLogin({
        serverLoginState: encode(serverState),
        finishLoginRequest: encode(finalization),
      });
      return true;
    } catch {
      return false;
    }
  }

  private attempt<T>(field: string, step: () => T): T {
    try {
      return step();
    } catch (error) {
      // The library's messages name the step and the decoding problem, never secret material.
      throw malformed(
        field,
        `not a valid OPAQUE message: ${String((error as Error).message ?? error).slice(0, 120)}`,
      );
    }
  }
}
