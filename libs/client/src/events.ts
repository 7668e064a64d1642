// System messages: the event is stored by user id and rendered with the names known when it is
// read, so a name learned later (a profile fetched after the event) shows in old events too.
import type { ConversationEvent, ConversationEventType, Person } from "./types.js";

/** A system message's event as stored (JSON in the messages table). */
export interface StoredEvent {
  type: ConversationEventType;
  actor?: string;
  users: string[];
  previousName?: string;
}

/** Parses a stored event; undefined for rows written before events were stored. */
export function parseStoredEvent(json: string | null): StoredEvent | undefined {
  if (json === null) return undefined;
  try {
    const v = JSON.parse(json) as Partial<StoredEvent>;
    if (typeof v.type !== "string" || !Array.isArray(v.users)) return undefined;
    return v as StoredEvent;
  } catch {
    return undefined;
  }
}

/** How a person appears in a sentence: "you", the display name, else the user id. */
export function plainLabel(p: Person): string {
  if (p.self) return "you";
  return p.displayName ?? p.userId;
}

/** "a", "a and b", "a, b and c". */
export function listOf(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? "nobody";
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/**
 * The event as a sentence ("Bob added you, Carol and Dave"); `label` says how a person is
 * named (default {@link plainLabel}). The acted-upon own user comes first.
 */
export function describeEvent(e: ConversationEvent, label: (p: Person) => string = plainLabel): string {
  const users = [...e.users].sort((a, b) => Number(b.self) - Number(a.self));
  const who = listOf(users.map(label));
  const actor = e.actor === undefined ? "someone" : label(e.actor);
  switch (e.type) {
    case "added":
      return `${actor} added ${who}`;
    case "removed":
      return `${actor} removed ${who}`;
    case "left":
      return `${who} left`;
    case "joined":
      return `${who} joined`;
    case "deleted":
      return `${actor} deleted the conversation`;
    case "renamed": {
      const user = users[0];
      const before = e.previousName ?? (user === undefined ? "someone" : user.userId);
      return `${before} is now called ${user === undefined ? "?" : label(user)}`;
    }
  }
}
