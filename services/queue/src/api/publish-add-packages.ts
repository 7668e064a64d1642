import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { addPackageExpiry, type CheckedAddPackage, checkAddPackage } from "../domain/add-package.js";
import { malformed, quota } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import { StorageLabel } from "../domain/storage-keys.js";
import { replaceAddPackages } from "../store/add-packages.js";
import { authenticateClient, keyRing, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.publishAddPackages);

/**
 * PublishAddPackages: replaces all AddPackages of the client. Every one must check out and at
 * least one must be last resort; they are stored encrypted at rest, each with its expiry
 * (`addPackageExpiry`).
 */
export async function publishAddPackages(
  ctx: QueueContext,
  request: queue.PublishAddPackagesRequest,
): Promise<queue.PublishAddPackagesResponse> {
  const { tbs, client, claim } = await authenticateClient(
    ctx,
    request.signed,
    queue.PublishAddPackagesTbs,
    LABEL,
  );
  const count = tbs.addPackages.length;
  if (count === 0) throw malformed("tbs.add_packages", "at least one AddPackage is required");
  if (count > LIMITS.addPackagesPerPublish)
    throw quota("AddPackages per client", LIMITS.addPackagesPerPublish, count);
  const ring = keyRing(ctx);
  const now = ctx.now();
  const check = {
    cs: await ctx.ciphersuite(),
    domain: ctx.domain,
    clientId: client.clientId,
    authKey: client.authKey,
    configKey: (keyId: Uint8Array) => ring.usableConfigKey(keyId, now),
    opener: ctx.opener,
    nowSeconds: BigInt(Math.floor(now / 1000)),
  };
  const checked: CheckedAddPackage[] = [];
  for (const [i, bytes] of tbs.addPackages.entries()) {
    checked.push(await checkAddPackage(check, bytes, `tbs.add_packages[${i}]`));
  }
  if (!checked.some((c) => c.lastResort)) {
    throw malformed("tbs.add_packages", "none carries the last_resort extension");
  }
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await replaceAddPackages(
      tx,
      client.clientId,
      checked.map((c) => ({
        lastResort: c.lastResort,
        encryptedAddPackage: ctx.storage.seal(StorageLabel.AddPackage, c.bytes, client.clientId, false),
        expiresAt: addPackageExpiry(c, now, ctx.limits.addPackageLifetimeMs),
      })),
    );
  });
  return {};
}
