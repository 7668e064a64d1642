import type { Extension, GroupContext, KeyPackage } from "ts-mls";

/**
 * Phoenix's MLS extensions. Types come from the RFC 9420 private-use range (0xF000-0xFFFF),
 * except last_resort (0x000A, registered by the MLS extensions document).
 */
export const PHOENIX_EXTENSION_TYPES = {
  /** GroupContext extension: who is admin and who is member. */
  roles: 0xf0a1,
  /** KeyPackage extension: the client's sealed queue config (opaque to MLS and to the DS). */
  queueConfig: 0xf0a2,
  /** KeyPackage extension marking a last-resort KeyPackage (may be used more than once). */
  lastResort: 0x000a,
} as const;

/** A member's role in a group. */
export type Role = "admin" | "member";

/** Whom a role assignment is about: a leaf index or a user pseudonym. */
export type RoleSubject = { kind: "leaf"; leafIndex: number } | { kind: "pseudonym"; pseudonym: Uint8Array };

/** One entry of the roles extension. */
export interface RoleAssignment {
  subject: RoleSubject;
  role: Role;
}

/** The roles extension's data is malformed. */
export class RolesDecodeError extends Error {
  override name = "RolesDecodeError";
}

const SUBJECT_LEAF = 1;
const SUBJECT_PSEUDONYM = 2;
const ROLE_CODES: Record<Role, number> = { member: 1, admin: 2 };

// RFC 9420 §2.1.2 variable-length integer.
function writeVarint(out: number[], n: number): void {
  if (n < 0x40) out.push(n);
  else if (n < 0x4000) out.push(0x40 | (n >> 8), n & 0xff);
  else if (n < 0x40000000) out.push(0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  else throw new RangeError("length too large for an MLS varint");
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return a.length - b.length;
}

function subjectKey(s: RoleSubject): Uint8Array {
  if (s.kind === "leaf") {
    const b = new Uint8Array(5);
    b[0] = SUBJECT_LEAF;
    new DataView(b.buffer).setUint32(1, s.leafIndex);
    return b;
  }
  return Uint8Array.of(SUBJECT_PSEUDONYM, ...s.pseudonym);
}

/**
 * Encode role assignments (TLS presentation language, MLS varint vectors):
 *
 *     enum { leaf(1), pseudonym(2) } RoleSubjectType;
 *     enum { member(1), admin(2) } Role;
 *     struct {
 *       RoleSubjectType subject_type;
 *       select (subject_type) {
 *         case leaf:      uint32 leaf_index;
 *         case pseudonym: opaque pseudonym<V>;
 *       };
 *       Role role;
 *     } RoleAssignment;
 *     struct { RoleAssignment assignments<V>; } PhoenixRoles;
 *
 * Entries are sorted by subject (type, then bytes) and unique, so one role set has one encoding.
 */
export function encodeRoles(assignments: readonly RoleAssignment[]): Uint8Array {
  const sorted = [...assignments].sort((a, b) => compareBytes(subjectKey(a.subject), subjectKey(b.subject)));
  const body: number[] = [];
  let previous: Uint8Array | undefined;
  for (const a of sorted) {
    const key = subjectKey(a.subject);
    if (previous !== undefined && compareBytes(previous, key) === 0)
      throw new RangeError("a subject may have only one role");
    previous = key;
    if (a.subject.kind === "leaf") {
      body.push(...key);
    } else {
      body.push(SUBJECT_PSEUDONYM);
      writeVarint(body, a.subject.pseudonym.length);
      body.push(...a.subject.pseudonym);
    }
    body.push(ROLE_CODES[a.role]);
  }
  const out: number[] = [];
  writeVarint(out, body.length);
  return Uint8Array.from([...out, ...body]);
}

/** Decode {@link encodeRoles} output; refuses unknown codes, duplicates, unsorted entries and trailing bytes. */
export function decodeRoles(bytes: Uint8Array): RoleAssignment[] {
  let off = 0;
  const need = (n: number) => {
    if (off + n > bytes.length) throw new RolesDecodeError("roles extension is truncated");
  };
  const varint = (): number => {
    need(1);
    const first = bytes[off] ?? 0;
    const prefix = first >> 6;
    if (prefix === 3) throw new RolesDecodeError("invalid varint prefix");
    const len = 1 << prefix;
    need(len);
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + (bytes[off + i] ?? 0);
    if (len > 1 && v < (len === 2 ? 0x40 : 0x4000)) throw new RolesDecodeError("non-minimal varint");
    off += len;
    return v;
  };
  const total = varint();
  need(total);
  if (off + total !== bytes.length) throw new RolesDecodeError("trailing bytes after roles");
  const out: RoleAssignment[] = [];
  let previous: Uint8Array | undefined;
  while (off < bytes.length) {
    need(1);
    const type = bytes[off++];
    let subject: RoleSubject;
    if (type === SUBJECT_LEAF) {
      need(4);
      subject = {
        kind: "leaf",
        leafIndex: new DataView(bytes.buffer, bytes.byteOffset + off, 4).getUint32(0),
      };
      off += 4;
    } else if (type === SUBJECT_PSEUDONYM) {
      const len = varint();
      need(len);
      subject = { kind: "pseudonym", pseudonym: bytes.slice(off, off + len) };
      off += len;
    } else throw new RolesDecodeError(`unknown role subject type ${type}`);
    need(1);
    const code = bytes[off++];
    const role = code === ROLE_CODES.admin ? "admin" : code === ROLE_CODES.member ? "member" : undefined;
    if (role === undefined) throw new RolesDecodeError(`unknown role code ${code}`);
    const key = subjectKey(subject);
    if (previous !== undefined && compareBytes(previous, key) >= 0)
      throw new RolesDecodeError("role entries are duplicated or unsorted");
    previous = key;
    out.push({ subject, role });
  }
  return out;
}

/** The roles GroupContext extension for a set of assignments. */
export function rolesExtension(assignments: readonly RoleAssignment[]): Extension {
  return { extensionType: PHOENIX_EXTENSION_TYPES.roles, extensionData: encodeRoles(assignments) };
}

/** The role assignments of a group, or undefined when the group has no roles extension. */
export function rolesOf(groupContext: GroupContext): RoleAssignment[] | undefined {
  const ext = groupContext.extensions.find((e) => e.extensionType === PHOENIX_EXTENSION_TYPES.roles);
  return ext === undefined ? undefined : decodeRoles(ext.extensionData);
}

/** The role of a subject in a list of assignments; subjects not listed are members. */
export function roleOf(assignments: readonly RoleAssignment[], subject: RoleSubject): Role {
  const key = subjectKey(subject);
  return assignments.find((a) => compareBytes(subjectKey(a.subject), key) === 0)?.role ?? "member";
}

/** The sealed queue config a KeyPackage carries, if any. */
export function queueConfigOf(kp: KeyPackage): Uint8Array | undefined {
  return kp.extensions.find((e) => e.extensionType === PHOENIX_EXTENSION_TYPES.queueConfig)?.extensionData;
}

/** Whether a KeyPackage is marked last resort. */
export function isLastResort(kp: KeyPackage): boolean {
  return kp.extensions.some((e) => e.extensionType === PHOENIX_EXTENSION_TYPES.lastResort);
}
