import { type DestinationStream, type Logger, pino } from "pino";
import type { LogLevel } from "../config/base-config.js";

export type { Logger } from "pino";

/**
 * Field names whose values never reach a log line, at the top level and up to two levels deep
 * (`{ group: { earKey } }`, `{ req: { headers: { authorization } } }`). Key material (EAR keys,
 * private keys, ratchet secrets, friendship tokens) must stay out of logs even at trace level.
 */
export const REDACTED_FIELDS = [
  "earKey",
  "privateKey",
  "signingKey",
  "secret",
  "ratchetSecret",
  "friendshipToken",
  "password",
  "token",
  "authorization",
  "cookie",
] as const;

function redactPaths(fields: readonly string[]): string[] {
  return fields.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
}

export interface CreateLoggerOptions {
  /** Bound to every line as `service`. */
  service: string;
  level?: LogLevel;
  /** Extra field names to redact (same depth rules as {@link REDACTED_FIELDS}). */
  redact?: readonly string[];
  /** Where JSON lines go (default: stdout). Tests pass a collecting stream. */
  destination?: DestinationStream;
}

/**
 * The service logger: one JSON object per line (`level` as a name, ISO `time`, `service`,
 * `msg`), secrets redacted, and binary values (`Uint8Array`/`Buffer`) logged as their length
 * only, so ciphertexts and keys never spill into logs by accident.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths([...REDACTED_FIELDS, ...(options.redact ?? [])]), censor: "[redacted]" },
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => summarizeBinary(object, 0) as Record<string, unknown>,
      },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    options.destination,
  );
}

const MAX_DEPTH = 4;

/** Replaces binary values by `<N bytes>` in plain objects and arrays (bounded depth). */
function summarizeBinary(value: unknown, depth: number): unknown {
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (depth >= MAX_DEPTH || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => summarizeBinary(v, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = summarizeBinary(v, depth + 1);
  return out;
}
