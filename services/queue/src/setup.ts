import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex, randomBytes, toHex } from "@phoenix/crypto";
import type { Logger } from "@phoenix/runtime/log";
import type { QueueConfig } from "./config.js";
import { WebhookAddressPolicy } from "./domain/webhook-address.js";
import { LoggingNotifier, type PushNotifier, WebhookNotifier } from "./push/notifier.js";

/** The QS's drizzle-kit migrations. */
export const QUEUE_MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

/** The storage key is neither configured nor derivable from DATA_DIR. */
export class StorageKeyError extends Error {
  override readonly name = "StorageKeyError";
}

/**
 * The 32-byte storage key: `QS_STORAGE_KEY`, else `$DATA_DIR/queue/storage.key` (created with
 * mode 0600 on first start — the embedded homeserver's default). Deployments set the variable
 * from a secret: a key that lives next to the database protects nothing against a disk copy.
 */
export async function loadStorageKey(
  config: Pick<QueueConfig, "QS_STORAGE_KEY" | "DATA_DIR">,
): Promise<Uint8Array> {
  if (config.QS_STORAGE_KEY) return fromHex(config.QS_STORAGE_KEY.toLowerCase());
  if (!config.DATA_DIR) {
    throw new StorageKeyError("set QS_STORAGE_KEY (64 hex characters) or DATA_DIR to keep a generated one");
  }
  const dir = join(config.DATA_DIR, "queue");
  const file = join(dir, "storage.key");
  try {
    const text = (await readFile(file, "utf8")).trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new StorageKeyError(`${file} does not hold 64 hex characters`);
    return fromHex(text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  // "wx": two processes starting at once cannot both create a key.
  await writeFile(file, `${toHex(key)}\n`, { mode: 0o600, flag: "wx" }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    },
  );
  return fromHex((await readFile(file, "utf8")).trim());
}

/** The push notifier QS_PUSH_NOTIFIER names: log only, or webhooks under the SSRF policy. */
export function pushNotifier(
  config: Pick<QueueConfig, "QS_PUSH_NOTIFIER" | "QS_PUSH_WEBHOOK_ALLOW_HTTP" | "QS_PUSH_WEBHOOK_ALLOW">,
  logger: Logger,
): PushNotifier {
  if (config.QS_PUSH_NOTIFIER !== "webhook") return new LoggingNotifier(logger);
  return new WebhookNotifier({
    allowHttp: config.QS_PUSH_WEBHOOK_ALLOW_HTTP,
    policy: new WebhookAddressPolicy(config.QS_PUSH_WEBHOOK_ALLOW),
    fallback: new LoggingNotifier(logger),
    logger,
  });
}
