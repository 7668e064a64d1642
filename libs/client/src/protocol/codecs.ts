// Small encodings of protocol values the flows read and write: the user profile plaintext, hex
// keys, and a commit's DS-defined authenticated data.
import { delivery } from "@phoenix/proto";

/** The plaintext of a user profile (encrypted under the user profile key before it leaves). */
export function profileBytes(displayName: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ displayName }));
}

export function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** A commit's CommitAad (client infos of joiners), or undefined when absent or malformed. */
export function safeCommitAad(aad: Uint8Array | undefined): delivery.CommitAad | undefined {
  if (aad === undefined || aad.length === 0) return undefined;
  try {
    return delivery.CommitAad.decode(aad);
  } catch {
    return undefined;
  }
}
