import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** A key file exists but does not hold what it should. */
export class KeyFileError extends Error {
  override readonly name = "KeyFileError";
}

/**
 * Reads a 32-byte key kept as 64 hex characters in `file`, creating it (mode 0600, directory
 * 0700) on first start. A key next to the data protects against a database dump, not against a
 * copy of the whole data directory: deployments set the key from a secret instead.
 */
export async function loadOrCreateKeyFile(file: string): Promise<string> {
  try {
    const text = (await readFile(file, "utf8")).trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new KeyFileError(`${file} does not hold 64 hex characters`);
    return text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // "wx": of two processes starting at once only one writes; both then read the same key.
  await writeFile(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    },
  );
  return (await readFile(file, "utf8")).trim();
}
