import type { z } from "zod";

/** One rejected environment variable. */
export interface ConfigIssue {
  /** The env var name, or `(config)` for a rule spanning several variables. */
  variable: string;
  /** Why it was rejected: "missing", "not an integer", "not a URL", … (never the value). */
  reason: string;
}

/** The environment does not satisfy the service's config schema; lists every bad variable. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const lines = issues.map((i) => `  ${i.variable}: ${i.reason}`);
    const noun = issues.length === 1 ? "variable" : "variables";
    super(`invalid configuration (${issues.length} bad environment ${noun}):\n${lines.join("\n")}`);
    this.issues = issues;
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses `env` with a zod object schema whose keys are env var names. Throws {@link ConfigError}
 * naming every bad variable (not just the first) with a reason; values are never echoed since
 * they may be secrets. `overrides` are typed values (an embedding process's settings) that
 * replace their variables: those keys are left out of the parse and never read from `env`; a key
 * whose override is `undefined` is still read from `env`.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: Env = process.env,
  overrides: Partial<z.output<S>> = {},
): z.output<S> {
  const replaced = Object.keys(overrides).filter(
    (key) => key in schema.shape && (overrides as Record<string, unknown>)[key] !== undefined,
  );
  if (replaced.length === 0) return parseEnv(schema, env);
  const mask: Record<string, true> = Object.fromEntries(replaced.map((key) => [key, true]));
  const rest = parseEnv((schema as z.ZodObject<Record<string, z.ZodType>>).omit(mask), env);
  const typed = Object.fromEntries(replaced.map((key) => [key, (overrides as Record<string, unknown>)[key]]));
  return { ...rest, ...typed } as z.output<S>;
}

function parseEnv<S extends z.ZodObject>(schema: S, env: Env): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => toConfigIssue(issue, env));
  // One line per variable: a value can fail several checks, the first reason is the useful one.
  const seen = new Set<string>();
  throw new ConfigError(issues.filter((i) => !seen.has(i.variable) && seen.add(i.variable)));
}

function toConfigIssue(issue: z.core.$ZodIssue, env: Env): ConfigIssue {
  const key = issue.path[0];
  const variable = typeof key === "string" ? key : "(config)";
  const raw = typeof key === "string" ? env[key] : undefined;
  return { variable, reason: reasonOf(issue, raw) };
}

function reasonOf(issue: z.core.$ZodIssue, raw: string | undefined): string {
  // Whatever the schema expected, an absent or blank variable is best reported as missing.
  if (issue.path.length > 0 && (raw === undefined || raw.trim() === "")) return "missing";
  switch (issue.code) {
    case "invalid_type":
      if (issue.expected === "number" || issue.expected === "int") return "not a number";
      if (issue.expected === "boolean") return "not a boolean";
      return `expected ${issue.expected}`;
    case "invalid_format":
      return issue.format === "url" ? "not a URL" : `not a valid ${issue.format}`;
    case "invalid_value":
      return `must be one of ${issue.values.map(String).join(", ")}`;
    case "too_small":
      return `must be at least ${String(issue.minimum)}`;
    case "too_big":
      return `must be at most ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}
