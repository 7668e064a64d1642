import { encodeAddPackage, randomBytes } from "@phoenix/crypto";
import { createKeyPackage, createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "@phoenix/mls";
import { common } from "@phoenix/proto";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import { encodeKeyPackage } from "ts-mls/keyPackage.js";
import type { TestClient } from "./test-client.js";

let cs: Promise<CiphersuiteImpl> | undefined;

/** The Phoenix MLS ciphersuite on the node:crypto provider. */
export function ciphersuite(): Promise<CiphersuiteImpl> {
  cs ??= getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
  return cs;
}

/**
 * An AddPackage of `client` as a Phoenix client builds it: a KeyPackage with its queue config
 * (an encoded QsReference) and optionally the last-resort marker; the encrypted leaf secrets
 * are opaque to the QS.
 */
export async function addPackage(
  client: TestClient,
  options: { lastResort?: boolean; lifetimeSeconds?: number; queueOf?: TestClient } = {},
): Promise<Uint8Array> {
  const { publicPackage } = await createKeyPackage({
    cipherSuite: await ciphersuite(),
    credential: { credentialType: "basic", identity: randomBytes(32) },
    queueConfig: common.QsReference.encode((options.queueOf ?? client).qsReference()).finish(),
    lastResort: options.lastResort ?? false,
    ...(options.lifetimeSeconds !== undefined ? { lifetimeSeconds: options.lifetimeSeconds } : {}),
  });
  return encodeAddPackage({
    keyPackage: encodeKeyPackage(publicPackage),
    encryptedClientCredential: randomBytes(80),
    encryptedSignatureKey: randomBytes(48),
  });
}
