// The operator key file: one line `name:base64url-ed25519-seed` (mode 0600). The all-in-one
// homeserver creates one in its data directory on first start; `phoenix-admin keys generate`
// writes one for a five-service deployment, whose ADMIN_OPERATOR_KEYS gets the public half.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { SigningKey } from "@phoenix/crypto";

/** Where the all-in-one homeserver keeps its operator key, below its data directory. */
export const DATA_DIR_OPERATOR_KEY = join("admin", "operator.key");
/** Where the all-in-one homeserver writes its admin listener's address on every start. */
export const DATA_DIR_ADMIN_ADDRESS = join("admin", "address");

/** A key file that does not hold `name:base64url-seed`. */
export class OperatorKeyFileError extends Error {
  override readonly name = "OperatorKeyFileError";
}

/** An operator's signing key and the name ADMIN_OPERATOR_KEYS knows it by. */
export interface OperatorKey {
  readonly name: string;
  readonly key: SigningKey;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The ADMIN_OPERATOR_KEYS entry of a key: `name:base64url-public-key`. */
export function operatorKeyEntry(operator: OperatorKey): string {
  return `${operator.name}:${Buffer.from(operator.key.publicKey).toString("base64url")}`;
}

/** Parses a key file's text. */
export function parseOperatorKeyFile(text: string, file: string): OperatorKey {
  const line = text.trim();
  const colon = line.indexOf(":");
  const name = line.slice(0, colon);
  const seed = line.slice(colon + 1);
  if (colon < 0 || !NAME.test(name) || !/^[A-Za-z0-9_-]{43}$/.test(seed))
    throw new OperatorKeyFileError(`${file} does not hold name:base64url-seed (an operator key file)`);
  return { name, key: SigningKey.fromSeed(new Uint8Array(Buffer.from(seed, "base64url"))) };
}

/** Reads an operator key file. */
export async function readOperatorKeyFile(file: string): Promise<OperatorKey> {
  return parseOperatorKeyFile(await readFile(file, "utf8"), file);
}

/**
 * Writes a new operator key (mode 0600, directory 0700); refuses to replace an existing file
 * unless `replace`.
 */
export async function writeOperatorKeyFile(
  file: string,
  name: string,
  options: { replace?: boolean } = {},
): Promise<OperatorKey> {
  if (!NAME.test(name))
    throw new OperatorKeyFileError(`operator name "${name}": letters, digits, '.', '_' or '-' (at most 64)`);
  const key = SigningKey.generate();
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${name}:${Buffer.from(key.exportSeed()).toString("base64url")}\n`, {
    mode: 0o600,
    flag: options.replace ? "w" : "wx",
  });
  return { name, key };
}

/**
 * The all-in-one's operator key in `dataDir`, created on first start (of two processes starting
 * at once only one writes; both then read the same key).
 */
export async function loadOrCreateOperatorKey(dataDir: string, name = "local"): Promise<OperatorKey> {
  const file = join(dataDir, DATA_DIR_OPERATOR_KEY);
  try {
    return await readOperatorKeyFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await writeOperatorKeyFile(file, name).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  return readOperatorKeyFile(file);
}
