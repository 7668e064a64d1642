// JSON encodings of what the store keeps as blobs: a connection offer awaiting the user's
// decision, and the private half of an AddPackage's KeyPackage.
import {
  ClientCredential,
  type ClientCredential as ClientCredentialT,
  decodeFriendshipPackage,
  encodeFriendshipPackage,
  type FriendshipPackage,
} from "@phoenix/crypto";
import type { PrivateKeyPackage } from "ts-mls";
import { fromB64, toB64 } from "../protocol/helpers.js";

/** A verified connection offer as kept until the user decides. */
export interface StoredOffer {
  senderCredential: ClientCredentialT;
  groupId: Uint8Array;
  earKey: Uint8Array;
  credentialKey: Uint8Array;
  friendshipPackage: FriendshipPackage;
}

export function encodeStoredOffer(o: StoredOffer): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      senderCredential: toB64(o.senderCredential.bytes),
      groupId: toB64(o.groupId),
      earKey: toB64(o.earKey),
      credentialKey: toB64(o.credentialKey),
      friendshipPackage: toB64(encodeFriendshipPackage(o.friendshipPackage)),
    }),
  );
}

export function decodeStoredOffer(bytes: Uint8Array): StoredOffer {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string>;
  return {
    senderCredential: ClientCredential.decode(fromB64(j.senderCredential ?? "")),
    groupId: fromB64(j.groupId ?? ""),
    earKey: fromB64(j.earKey ?? ""),
    credentialKey: fromB64(j.credentialKey ?? ""),
    friendshipPackage: decodeFriendshipPackage(fromB64(j.friendshipPackage ?? "")),
  };
}

export function encodePrivateKeyPackage(p: PrivateKeyPackage): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      initPrivateKey: toB64(p.initPrivateKey),
      hpkePrivateKey: toB64(p.hpkePrivateKey),
      signaturePrivateKey: toB64(p.signaturePrivateKey),
    }),
  );
}

export function decodePrivateKeyPackage(bytes: Uint8Array): PrivateKeyPackage {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string>;
  return {
    initPrivateKey: fromB64(j.initPrivateKey ?? ""),
    hpkePrivateKey: fromB64(j.hpkePrivateKey ?? ""),
    signaturePrivateKey: fromB64(j.signaturePrivateKey ?? ""),
  };
}
