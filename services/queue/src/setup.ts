import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex, randomBytes, toHex } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import type { Logger } from "@phoenix/runtime/log";
import type { QueueConfig } from "./config.js";
import { WebhookAddressPolicy } from "./domain/webhook-address.js";
import { APNS_ORIGINS, ApnsNotifier } from "./push/apns.js";
import { FcmNotifier, parseServiceAccount } from "./push/fcm.js";
import { LoggingNotifier, type PushNotifier, WebhookNotifier } from "./push/notifier.js";
import { ProviderRouter } from "./push/provider-router.js";

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

/** A push provider's configuration is incomplete or unreadable. */
export class PushConfigError extends Error {
  override readonly name = "PushConfigError";
}

type PushConfig = Pick<
  QueueConfig,
  | "QS_PUSH_NOTIFIER"
  | "QS_PUSH_WEBHOOK_ALLOW_HTTP"
  | "QS_PUSH_WEBHOOK_ALLOW"
  | "QS_PUSH_TTL"
  | "QS_PUSH_CA_FILE"
  | "QS_PUSH_APNS_KEY_FILE"
  | "QS_PUSH_APNS_KEY_ID"
  | "QS_PUSH_APNS_TEAM_ID"
  | "QS_PUSH_APNS_TOPIC"
  | "QS_PUSH_APNS_ENVIRONMENT"
  | "QS_PUSH_APNS_PUSH_TYPE"
  | "QS_PUSH_APNS_BASE_URL"
  | "QS_PUSH_FCM_SERVICE_ACCOUNT_FILE"
  | "QS_PUSH_FCM_BASE_URL"
  | "QS_PUSH_FCM_TOKEN_URI"
>;

/**
 * The push notifier of the config: each token goes to its provider — webhooks when
 * QS_PUSH_NOTIFIER is "webhook" (under the SSRF policy), APNs when QS_PUSH_APNS_KEY_FILE is set,
 * FCM when QS_PUSH_FCM_SERVICE_ACCOUNT_FILE is set — and the others are only logged. Reads the
 * key files now, so a bad one stops the start.
 */
export async function pushNotifier(config: PushConfig, logger: Logger): Promise<PushNotifier> {
  const log = new LoggingNotifier(logger);
  const providers = new Map<queue.PushProvider, PushNotifier>();
  if (config.QS_PUSH_NOTIFIER === "webhook") {
    providers.set(
      queue.PushProvider.PUSH_PROVIDER_WEBHOOK,
      new WebhookNotifier({
        allowHttp: config.QS_PUSH_WEBHOOK_ALLOW_HTTP,
        policy: new WebhookAddressPolicy(config.QS_PUSH_WEBHOOK_ALLOW),
        logger,
      }),
    );
  }
  const ca = config.QS_PUSH_CA_FILE ? await readFile(config.QS_PUSH_CA_FILE) : undefined;
  if (config.QS_PUSH_APNS_KEY_FILE) {
    const { QS_PUSH_APNS_KEY_ID: keyId, QS_PUSH_APNS_TEAM_ID: teamId, QS_PUSH_APNS_TOPIC: topic } = config;
    if (!keyId || !teamId || !topic) {
      throw new PushConfigError(
        "QS_PUSH_APNS_KEY_FILE needs QS_PUSH_APNS_KEY_ID, QS_PUSH_APNS_TEAM_ID and QS_PUSH_APNS_TOPIC",
      );
    }
    providers.set(
      queue.PushProvider.PUSH_PROVIDER_APNS,
      new ApnsNotifier({
        key: await readFile(config.QS_PUSH_APNS_KEY_FILE, "utf8"),
        keyId,
        teamId,
        topic,
        origin: config.QS_PUSH_APNS_BASE_URL
          ? new URL(config.QS_PUSH_APNS_BASE_URL).origin
          : APNS_ORIGINS[config.QS_PUSH_APNS_ENVIRONMENT],
        pushType: config.QS_PUSH_APNS_PUSH_TYPE,
        ttlMs: config.QS_PUSH_TTL,
        ...(ca ? { ca } : {}),
      }),
    );
  }
  if (config.QS_PUSH_FCM_SERVICE_ACCOUNT_FILE) {
    providers.set(
      queue.PushProvider.PUSH_PROVIDER_FCM,
      new FcmNotifier({
        account: parseServiceAccount(await readFile(config.QS_PUSH_FCM_SERVICE_ACCOUNT_FILE, "utf8")),
        ...(config.QS_PUSH_FCM_BASE_URL ? { origin: new URL(config.QS_PUSH_FCM_BASE_URL).origin } : {}),
        ...(config.QS_PUSH_FCM_TOKEN_URI ? { tokenUri: config.QS_PUSH_FCM_TOKEN_URI } : {}),
        ttlMs: config.QS_PUSH_TTL,
        ...(ca ? { ca } : {}),
      }),
    );
  }
  logger.info(
    { providers: [...providers.keys()].map((p) => queue.pushProviderToJSON(p)) },
    "push providers (tokens of others are logged only)",
  );
  return new ProviderRouter(providers, log);
}
