import { type AddPackage, decodeAddPackage, toHex } from "@phoenix/crypto";
import { isLastResort, PHOENIX_CIPHERSUITE, queueConfigOf } from "@phoenix/mls";
import { common } from "@phoenix/proto";
import type { CiphersuiteImpl, KeyPackage } from "ts-mls";
import { decodeKeyPackage, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { invalid, malformed, sizeLimit } from "./errors.js";
import { floorTo, HOUR, LIMITS } from "./limits.js";
import type { ConfigKeyLookup, QueueConfigOpener } from "./queue-config-opener.js";

const { ErrorReason } = common;

/** One checked AddPackage, ready to store. */
export interface CheckedAddPackage {
  bytes: Uint8Array;
  lastResort: boolean;
  /** The KeyPackage's own end of life (its lifetime's notAfter), in ms since the epoch. */
  notAfterMs: number;
}

/** What checking an AddPackage needs to know. */
export interface AddPackageContext {
  cs: CiphersuiteImpl;
  domain: string;
  /** The publishing client record and its auth key (its queue config must name it). */
  clientId: Uint8Array;
  authKey: Uint8Array;
  configKey: ConfigKeyLookup;
  opener: QueueConfigOpener;
  nowSeconds: bigint;
}

/**
 * Checks one published AddPackage: a libs/crypto AddPackage around an RFC 9420 KeyPackage of
 * the Phoenix ciphersuite whose signature verifies, whose lifetime covers now, and whose
 * queue-config extension (an encoded QsReference) is a sealed config of this QS naming the
 * publishing client — so nobody can publish packages that route to someone else's queue.
 */
export async function checkAddPackage(
  ctx: AddPackageContext,
  bytes: Uint8Array,
  field: string,
): Promise<CheckedAddPackage> {
  if (bytes.length > LIMITS.addPackage) throw sizeLimit(field, LIMITS.addPackage, bytes.length);
  let addPackage: AddPackage;
  try {
    addPackage = decodeAddPackage(bytes);
  } catch {
    throw malformed(field, "is not an AddPackage");
  }
  let kp: KeyPackage;
  try {
    const decoded = decodeKeyPackage(addPackage.keyPackage, 0);
    if (decoded === undefined || decoded[1] !== addPackage.keyPackage.length)
      throw new Error("trailing bytes");
    kp = decoded[0];
  } catch {
    throw malformed(`${field}.key_package`, "is not an RFC 9420 KeyPackage");
  }
  if (kp.version !== "mls10" || kp.cipherSuite !== PHOENIX_CIPHERSUITE) {
    throw invalid(
      ErrorReason.ERROR_REASON_INVALID_MLS,
      `${field}: KeyPackage must be MLS 1.0 with ${PHOENIX_CIPHERSUITE}`,
    );
  }
  if (!(await verifyKeyPackage(kp, ctx.cs.signature))) {
    throw invalid(ErrorReason.ERROR_REASON_INVALID_MLS, `${field}: KeyPackage signature does not verify`);
  }
  const { lifetime } = kp.leafNode;
  if (lifetime.notBefore > ctx.nowSeconds || lifetime.notAfter < ctx.nowSeconds) {
    throw invalid(ErrorReason.ERROR_REASON_EXPIRED, `${field}: KeyPackage is expired or not yet valid`);
  }
  const extension = queueConfigOf(kp);
  if (extension === undefined) {
    throw invalid(ErrorReason.ERROR_REASON_INVALID_MLS, `${field}: KeyPackage has no queue-config extension`);
  }
  let reference: common.QsReference;
  try {
    reference = common.QsReference.decode(extension);
  } catch {
    throw malformed(`${field}.queue_config`, "is not a QsReference");
  }
  if (reference.domain !== ctx.domain) {
    throw invalid(
      ErrorReason.ERROR_REASON_WRONG_DOMAIN,
      `${field}: queue config names domain "${reference.domain}"`,
    );
  }
  if (reference.sealedQueueConfig.length > LIMITS.sealedQueueConfig) {
    throw sizeLimit(
      `${field}.sealed_queue_config`,
      LIMITS.sealedQueueConfig,
      reference.sealedQueueConfig.length,
    );
  }
  const ownId = toHex(ctx.clientId);
  const opened = ctx.opener.open(reference.sealedQueueConfig, ctx.configKey, (id) =>
    // Only the current auth key: a KeyPackage published now must be sealed with it.
    id === ownId ? [ctx.authKey] : undefined,
  );
  if (opened.kind !== "open" || toHex(opened.clientId) !== ownId) {
    throw invalid(
      ErrorReason.ERROR_REASON_MALFORMED,
      `${field}: queue config does not name the publishing client`,
    );
  }
  return {
    bytes,
    lastResort: isLastResort(kp),
    // notAfter is a u64: one beyond any date is simply "later than every cap".
    notAfterMs: Number(lifetime.notAfter) * 1000,
  };
}

/**
 * When a stored AddPackage stops being handed out: its KeyPackage's notAfter or
 * `lifetimeMs` after publication, whichever is first, rounded down to the hour (a coarse time:
 * an exact one would date the publication).
 */
export function addPackageExpiry(
  checked: Pick<CheckedAddPackage, "notAfterMs">,
  nowMs: number,
  lifetimeMs: number,
): Date {
  return floorTo(Math.min(checked.notAfterMs, nowMs + lifetimeMs), HOUR);
}

/**
 * The KeyPackage notAfter (ms) of an AddPackage stored earlier (checked at publication, so not
 * verified again); 0 when it cannot be read, which makes the package expired.
 */
export function storedNotAfterMs(bytes: Uint8Array): number {
  try {
    const decoded = decodeKeyPackage(decodeAddPackage(bytes).keyPackage, 0);
    return decoded === undefined ? 0 : Number(decoded[0].leafNode.lifetime.notAfter) * 1000;
  } catch {
    return 0;
  }
}
