import type { Logger } from "../log/create-logger.js";

/** Anything a service must release on shutdown: a db handle, a bus, a relay, a subscription, a timer. */
export type Closeable = { close(): unknown } | { stop(): unknown } | (() => unknown);

export interface NamedCloseable {
  name: string;
  resource: Closeable;
}

export interface CloseAllOptions {
  /** Per resource; a resource that takes longer counts as failed and the next one is closed. */
  timeoutMs: number;
  logger?: Logger;
}

/** A resource did not close in time. */
export class CloseTimeoutError extends Error {
  override readonly name = "CloseTimeoutError";
}

function closeOne(resource: Closeable): unknown {
  if (typeof resource === "function") return resource();
  if ("close" in resource) return resource.close();
  return resource.stop();
}

/**
 * Closes resources in reverse registration order (what was opened last depends on what was
 * opened first: the outbox relay before the database it reads). A failing or hanging resource
 * is logged and does not keep the others open. Resolves with the names of those that failed.
 */
export async function closeAll(
  resources: readonly NamedCloseable[],
  options: CloseAllOptions,
): Promise<string[]> {
  const failed: string[] = [];
  for (const { name, resource } of [...resources].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => closeOne(resource)),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new CloseTimeoutError(`${name} did not close within ${options.timeoutMs} ms`)),
            options.timeoutMs,
          );
        }),
      ]);
      options.logger?.debug({ resource: name }, "closed");
    } catch (error) {
      failed.push(name);
      options.logger?.error({ err: error, resource: name }, "closing failed");
    } finally {
      clearTimeout(timer);
    }
  }
  return failed;
}
