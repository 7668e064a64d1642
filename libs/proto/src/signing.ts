import { randomBytes } from "node:crypto";
import type { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import type { RequestHeader, Signed } from "./gen/phoenix/common/v1/common.js";

/** The encode half of a generated message type (e.g. `auth.RegisterUserTbs`). */
export interface MessageEncoder<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

/** The decode half of a generated message type. */
export interface MessageDecoder<T> {
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

/**
 * Produces the labelled signature over `tbs` — libs/crypto's Ed25519 signing with label
 * "Phoenix" + `label`. The SDK itself holds no keys.
 */
export type TbsSigner = (label: string, tbs: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** The sender variants of a request header (`undefined` for proof-of-possession requests). */
export type RequestSender = RequestHeader["sender"];

/**
 * The signature label of an RPC: its full name, e.g. "phoenix.auth.v1.AuthService/DeleteUser".
 * Accepts a generated method definition (`AuthServiceService.deleteUser`) or its path.
 */
export function rpcLabel(method: { path: string } | string): string {
  const path = typeof method === "string" ? method : method.path;
  return path.startsWith("/") ? path.slice(1) : path;
}

/** A fresh request header: the label, the current time and 16 random bytes of request id. */
export function requestHeader(label: string, sender: RequestSender, now: Date = new Date()): RequestHeader {
  return { label, timestamp: now, requestId: new Uint8Array(randomBytes(16)), sender };
}

/**
 * Encodes `tbs` once and signs exactly those bytes with the label of its header. The returned
 * `Signed` carries the encoded bytes, so nothing is re-encoded on the way to the verifier.
 */
export async function signTbs<T extends { header: RequestHeader | undefined }>(
  type: MessageEncoder<T>,
  tbs: T,
  signer: TbsSigner,
): Promise<Signed> {
  if (!tbs.header?.label) throw new Error("signTbs: the tbs message has no header label");
  const bytes = type.encode(tbs).finish();
  const signature = await signer(tbs.header.label, bytes);
  return { tbs: bytes, signature };
}

/** Decodes the `…Tbs` message of a `Signed`. Verify `signed.signature` over `signed.tbs` first. */
export function decodeTbs<T>(type: MessageDecoder<T>, signed: Signed): T {
  return type.decode(signed.tbs);
}
