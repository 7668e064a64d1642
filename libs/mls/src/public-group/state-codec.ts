import type { GroupContext, Proposal, RatchetTree, Sender } from "ts-mls";
import { decodeGroupContext, encodeGroupContext } from "ts-mls/groupContext.js";
import { decodeProposal, encodeProposal } from "ts-mls/proposal.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { decodeSender, encodeSender } from "ts-mls/sender.js";
import { StateDecodeError } from "./errors.js";

/** A proposal accepted in the current epoch, kept until a commit consumes it. */
export interface PendingProposal {
  ref: Uint8Array;
  proposal: Proposal;
  sender: Sender;
}

/** Everything a PublicGroup persists. */
export interface PublicGroupState {
  groupContext: GroupContext;
  tree: RatchetTree;
  /** Confirmation tag of the commit that started this epoch (feeds the interim transcript hash). */
  confirmationTag: Uint8Array;
  pending: PendingProposal[];
  /** Encoded ratchet trees of recent epochs in which members were added, oldest first. */
  retainedTrees: { epoch: bigint; tree: Uint8Array }[];
}

const FORMAT_VERSION = 1;

/**
 * Encodings of ratchet trees by tree object. A tree is never changed in place (ts-mls and this
 * library build a new array for every change), so an object's encoding never goes stale; a
 * commit's tree is encoded once although the GroupInfo check, the retained trees and the stored
 * state all need it (at 1 024 members that is 3 MB each time).
 */
const treeEncodings = new WeakMap<RatchetTree, Uint8Array>();

/** `encodeRatchetTree(tree)`, computed once per tree object (callers must not change the bytes). */
export function encodedTree(tree: RatchetTree): Uint8Array {
  let bytes = treeEncodings.get(tree);
  if (bytes === undefined) {
    bytes = encodeRatchetTree(tree);
    treeEncodings.set(tree, bytes);
  }
  return bytes;
}

class Writer {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  u8(n: number): void {
    this.push(Uint8Array.of(n));
  }
  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    this.push(b);
  }
  u64(n: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n);
    this.push(b);
  }
  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.push(b);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out;
  }
  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.byteLength;
  }
}

class Reader {
  private off = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.off + n > this.buf.byteLength) throw new StateDecodeError("public group state is truncated");
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.off++);
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off);
    this.off += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.off);
    this.off += 8;
    return v;
  }
  bytes(): Uint8Array {
    const len = this.u32();
    this.need(len);
    const out = this.buf.slice(this.off, this.off + len);
    this.off += len;
    return out;
  }
  end(): void {
    if (this.off !== this.buf.byteLength)
      throw new StateDecodeError("trailing bytes after public group state");
  }
}

function decodeWhole<T>(
  what: string,
  decoder: (b: Uint8Array, offset: number) => [T, number] | undefined,
  b: Uint8Array,
): T {
  const result = decoder(b, 0);
  if (result === undefined || result[1] !== b.byteLength) throw new StateDecodeError(`cannot decode ${what}`);
  return result[0];
}

/** Encode a public group's state: MLS structures in their RFC 9420 encoding inside a small versioned frame. */
export function encodePublicGroupState(state: PublicGroupState): Uint8Array {
  const w = new Writer();
  w.u8(FORMAT_VERSION);
  w.bytes(encodeGroupContext(state.groupContext));
  w.bytes(encodedTree(state.tree));
  w.bytes(state.confirmationTag);
  w.u32(state.pending.length);
  for (const p of state.pending) {
    w.bytes(p.ref);
    w.bytes(encodeSender(p.sender));
    w.bytes(encodeProposal(p.proposal));
  }
  w.u32(state.retainedTrees.length);
  for (const t of state.retainedTrees) {
    w.u64(t.epoch);
    w.bytes(t.tree);
  }
  return w.finish();
}

/** Decode what {@link encodePublicGroupState} produced; throws StateDecodeError on any defect. */
export function decodePublicGroupState(bytes: Uint8Array): PublicGroupState {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== FORMAT_VERSION) throw new StateDecodeError(`unknown public group state version ${version}`);
  const groupContext = decodeWhole("group context", decodeGroupContext, r.bytes());
  const tree = decodeWhole("ratchet tree", decodeRatchetTree, r.bytes());
  const confirmationTag = r.bytes();
  const pendingCount = r.u32();
  const pending: PendingProposal[] = [];
  for (let i = 0; i < pendingCount; i++) {
    const ref = r.bytes();
    const sender = decodeWhole("proposal sender", decodeSender, r.bytes());
    const proposal = decodeWhole("proposal", decodeProposal, r.bytes());
    pending.push({ ref, sender, proposal });
  }
  const retainedCount = r.u32();
  const retainedTrees: PublicGroupState["retainedTrees"] = [];
  for (let i = 0; i < retainedCount; i++) retainedTrees.push({ epoch: r.u64(), tree: r.bytes() });
  r.end();
  return { groupContext, tree, confirmationTag, pending, retainedTrees };
}
