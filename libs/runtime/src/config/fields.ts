import { isValidDomain } from "@phoenix/crypto";
import { z } from "zod";
import { parseAddressBlock } from "../rate-limit/caller-address.js";

/**
 * Field helpers for env-var config schemas. Every helper treats an empty value like an unset one
 * (a `FOO=` line in an env file means "not configured"), trims whitespace, and reports a short,
 * value-free reason (values may be secrets) that `loadConfig` prefixes with the variable name.
 *
 * Presence: no option → required; `{ optional: true }` → `T | undefined`; `{ default: v }` → `T`.
 */
export type Presence<T> = { default: T; optional?: never } | { optional: true; default?: never } | object;

/** The schema type a helper returns for the given presence option. */
export type EnvField<T, P> = P extends { default: T }
  ? z.ZodType<T, unknown>
  : P extends { optional: true }
    ? z.ZodType<T | undefined, unknown>
    : z.ZodType<T, unknown>;

/** Thrown by a field parser to reject a value with a reason such as "not an integer". */
class FieldReason extends Error {
  override readonly name = "FieldReason";
}

function emptyToUndefined(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function field<T, P extends Presence<T>>(parse: (raw: string) => T, presence: P | undefined): EnvField<T, P> {
  const inner = z.string({ error: "missing" }).transform((raw, ctx) => {
    try {
      return parse(raw);
    } catch (error) {
      if (!(error instanceof FieldReason)) throw error;
      ctx.addIssue({ code: "custom", message: error.message });
      return z.NEVER;
    }
  });
  const p = (presence ?? {}) as { default?: T; optional?: true };
  let schema: z.ZodType<unknown, unknown>;
  if ("default" in p && p.default !== undefined) {
    const fallback = p.default;
    schema = z.preprocess(emptyToUndefined, inner.optional()).transform((v) => v ?? fallback);
  } else if (p.optional) {
    schema = z.preprocess(emptyToUndefined, inner.optional());
  } else {
    schema = z.preprocess(emptyToUndefined, inner);
  }
  // The conditional return type cannot be checked inside the generic body; the branches above
  // are exactly its three cases.
  return schema as EnvField<T, P>;
}

function checkRange(value: number, min: number | undefined, max: number | undefined, unit = ""): number {
  if (min !== undefined && value < min) throw new FieldReason(`must be at least ${min}${unit}`);
  if (max !== undefined && value > max) throw new FieldReason(`must be at most ${max}${unit}`);
  return value;
}

/** A free-form string, optionally matched against a pattern. */
export function envString<P extends Presence<string>>(
  options?: P & { pattern?: RegExp; patternHint?: string },
): EnvField<string, P> {
  return field((raw) => {
    if (options?.pattern && !options.pattern.test(raw)) {
      throw new FieldReason(options.patternHint ?? `does not match ${options.pattern}`);
    }
    return raw;
  }, options);
}

/** The domain rule of ids and credentials, as config errors state it. */
export const DOMAIN_RULE =
  "a lower-case DNS name (labels of 1-63 letters, digits or hyphens, no hyphen at either end, at most 253 characters)";

/** The extra rule of a configured homeserver domain, as config errors state it. */
export const FQDN_RULE =
  'a fully qualified domain name (at least two labels, e.g. chat.example.org; only "localhost" may have one, for development)';

/**
 * Whether `domain` may name a homeserver: the domain rule of ids and credentials
 * ({@link isValidDomain}) and fully qualified (two labels or more), except `localhost` for
 * development. A single-label name would resolve through the local search path and could not be
 * reached, or be told apart, by federation peers.
 */
export function isHomeserverDomain(domain: string): boolean {
  return isValidDomain(domain) && (domain === "localhost" || domain.includes("."));
}

/**
 * A homeserver domain ({@link isHomeserverDomain}); the refusal quotes the value, since a domain
 * is public.
 */
export function envDomain<P extends Presence<string> = object>(options?: P): EnvField<string, P> {
  return field((raw) => {
    if (!isValidDomain(raw)) throw new FieldReason(`${JSON.stringify(raw)} is not ${DOMAIN_RULE}`);
    if (!isHomeserverDomain(raw)) throw new FieldReason(`${JSON.stringify(raw)} is not ${FQDN_RULE}`);
    return raw;
  }, options);
}

/** A decimal integer in `[min, max]`. */
export function envInt<P extends Presence<number>>(
  options?: P & { min?: number; max?: number },
): EnvField<number, P> {
  return field((raw) => {
    if (!/^[-+]?\d+$/.test(raw)) throw new FieldReason("not an integer");
    const value = Number(raw);
    if (!Number.isSafeInteger(value)) throw new FieldReason("integer out of range");
    return checkRange(value, options?.min, options?.max);
  }, options);
}

/** A TCP port, 0–65535 (0: let the OS pick, for tests). */
export function envPort<P extends Presence<number>>(options?: P): EnvField<number, P> {
  return envInt({ ...(options ?? {}), min: 0, max: 65535 } as P & { min: number; max: number });
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

/** A boolean: `true/false`, `1/0`, `yes/no`, `on/off` (case-insensitive). */
export function envBool<P extends Presence<boolean>>(options?: P): EnvField<boolean, P> {
  return field((raw) => {
    const v = raw.toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    throw new FieldReason("not a boolean (use true/false)");
  }, options);
}

/** An absolute URL, optionally restricted to some schemes (`["postgres", "postgresql"]`). */
export function envUrl<P extends Presence<string>>(
  options?: P & { protocols?: string[] },
): EnvField<string, P> {
  return field((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new FieldReason("not a URL");
    }
    const scheme = url.protocol.replace(/:$/, "");
    if (options?.protocols && !options.protocols.includes(scheme)) {
      throw new FieldReason(`URL scheme must be one of ${options.protocols.join(", ")}`);
    }
    return raw;
  }, options);
}

/** One of a fixed set of values. */
export function envEnum<const V extends readonly [string, ...string[]], P extends Presence<V[number]>>(
  values: V,
  options?: P,
): EnvField<V[number], P> {
  return field((raw) => {
    if (!(values as readonly string[]).includes(raw))
      throw new FieldReason(`must be one of ${values.join(", ")}`);
    return raw as V[number];
  }, options);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration in milliseconds: a plain integer (ms) or with a unit, `250ms`, `5s`, `2m`, `1h`, `90d`. */
export function envDuration<P extends Presence<number>>(
  options?: P & { min?: number; max?: number },
): EnvField<number, P> {
  return field((raw) => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(raw);
    if (!match) throw new FieldReason("not a duration (e.g. 1500, 1500ms, 30s, 2m, 90d)");
    const value = Math.round(Number(match[1]) * (DURATION_UNITS[match[2] ?? "ms"] ?? 1));
    return checkRange(value, options?.min, options?.max, " ms");
  }, options);
}

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** A size in bytes: a plain integer or with a unit, `512KiB`, `4MiB`, `1MB`. */
export function envBytes<P extends Presence<number>>(
  options?: P & { min?: number; max?: number },
): EnvField<number, P> {
  return field((raw) => {
    const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i.exec(raw);
    if (!match) throw new FieldReason("not a size in bytes (e.g. 4194304, 4MiB, 512KiB)");
    const value = Math.floor(Number(match[1]) * (BYTE_UNITS[(match[2] ?? "b").toLowerCase()] ?? 1));
    return checkRange(value, options?.min, options?.max, " bytes");
  }, options);
}

/**
 * A 32-byte secret key (a key-encryption or marker key from a secret), as 64 hex characters or
 * base64; the text is returned as it is, for the consumer to decode.
 */
export function envSecretKey<P extends Presence<string> = object>(options?: P): EnvField<string, P> {
  return field((raw) => {
    if (!/^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/.test(raw))
      throw new FieldReason("must be a 32-byte key: 64 hex characters or base64 (e.g. openssl rand -hex 32)");
    return raw;
  }, options);
}

/** A comma-separated list of non-empty strings. */
export function envList<P extends Presence<string[]>>(options?: P): EnvField<string[], P> {
  return field(
    (raw) =>
      raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== ""),
    options,
  );
}

/**
 * A comma-separated list of IP addresses and CIDR blocks (`10.0.0.7, 10.42.0.0/16, fd00::/8`),
 * e.g. trusted proxies; an entry that is neither is refused with its position.
 */
export function envAddressList<P extends Presence<string[]>>(options?: P): EnvField<string[], P> {
  return field((raw) => {
    const entries = raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    entries.forEach((entry, index) => {
      if (!parseAddressBlock(entry)) {
        throw new FieldReason(`entry ${index + 1} is not an IP address or CIDR block`);
      }
    });
    return entries;
  }, options);
}
