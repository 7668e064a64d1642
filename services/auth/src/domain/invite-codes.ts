import { constantTimeEqual, sha256, utf8 } from "@phoenix/crypto";
import { Limits } from "./limits.js";

/** An invite code from AS_INVITE_CODES with the number of registrations it admits. */
export interface InviteCode {
  readonly code: Uint8Array;
  /** SHA-256 of the code: the only form stored (table invite_code_uses). */
  readonly hash: Uint8Array;
  readonly maxUses: number;
}

/** AS_INVITE_CODES holds an entry the AS cannot use. */
export class InviteCodeConfigError extends Error {
  override readonly name = "InviteCodeConfigError";
}

/**
 * Reads AS_INVITE_CODES entries: `code` admits `defaultUses` registrations (AS_INVITE_CODE_USES),
 * `code:N` admits N. Codes are at most 128 bytes (what RegisterUser accepts).
 */
export function parseInviteCodes(entries: readonly string[], defaultUses: number): InviteCode[] {
  return entries.map((entry, i) => {
    const match = /^(.*?)(?::(\d+))?$/.exec(entry);
    const text = match?.[1] ?? "";
    const maxUses = match?.[2] === undefined ? defaultUses : Number(match[2]);
    if (text === "") throw new InviteCodeConfigError(`AS_INVITE_CODES entry ${i + 1} has no code`);
    const code = utf8(text);
    if (code.length > Limits.inviteCode) {
      throw new InviteCodeConfigError(
        `AS_INVITE_CODES entry ${i + 1} is longer than ${Limits.inviteCode} bytes`,
      );
    }
    if (!Number.isSafeInteger(maxUses) || maxUses < 1) {
      throw new InviteCodeConfigError(`AS_INVITE_CODES entry ${i + 1} must admit at least one registration`);
    }
    return { code, hash: sha256(code), maxUses };
  });
}

/**
 * The configured code equal to `given`, if any. Compares against every code without an early
 * exit, so timing tells nothing about the codes.
 */
export function matchInviteCode(codes: readonly InviteCode[], given: string): InviteCode | undefined {
  const bytes = utf8(given);
  let found: InviteCode | undefined;
  for (const candidate of codes) {
    if (candidate.code.length === bytes.length && constantTimeEqual(candidate.code, bytes)) found = candidate;
  }
  return found;
}
