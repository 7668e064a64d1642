// What the CLI shows about its own user without the protocol: read from the store alone (no
// network, no MLS, no key material decoded), so `phoenix whoami` costs one SQLite open.
import { ClientStore } from "../store/client-store.js";

/** The local user as the store keeps it. */
export interface LocalProfile {
  userId: string;
  displayName: string;
  handles: string[];
}

/**
 * Reads the user of the store at `storePath`; undefined when it holds no registered account.
 * The account row keeps bytes as lowercase hex, so the user id is formatted from it directly.
 */
export function readLocalProfile(storePath: string): LocalProfile | undefined {
  const store = ClientStore.open(storePath);
  try {
    const account = store.getJson<Record<string, string>>("account");
    if (account === undefined) return undefined;
    const h = account.userUuid ?? "";
    const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    const handles = store.getJson<{ handle: string }[]>("handles") ?? [];
    return {
      userId: `${uuid}@${account.domain ?? ""}`,
      displayName: account.displayName ?? "",
      handles: handles.map((entry) => entry.handle),
    };
  } finally {
    store.close();
  }
}
