import { isDeepStrictEqual } from "node:util";
import type { z } from "zod";
import type { ServiceModule } from "./service-module.js";

/**
 * A module's typed config values as the environment its schema parses back to the same values:
 * what a deployment of separate processes hands each one, from the same typed settings that
 * `startModules` hands an embedded module. Undefined values are left out (env's default applies).
 * Throws `TypeError` for a key outside the module's schema or a value its variable cannot carry.
 */
export function moduleEnv<S extends z.ZodObject>(
  module: Pick<ServiceModule<S>, "name" | "config">,
  values: Readonly<Partial<z.output<S>>>,
): Record<string, string> {
  const shape: Readonly<Record<string, z.ZodType>> = module.config.shape;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const field = shape[key];
    if (field === undefined) {
      // The process would ignore it: a misspelt or foreign variable is a wiring mistake.
      throw new TypeError(`module ${module.name} has no config variable ${key}`);
    }
    const text = envText(value);
    // Blank text reads as unset, lists split on commas, text is trimmed: a value that does not
    // come back from its own field's parser would silently configure something else.
    const parsed = text === undefined ? undefined : field.safeParse(text);
    if (parsed === undefined || !parsed.success || !isDeepStrictEqual(parsed.data, value)) {
      throw new TypeError(`module ${module.name}: no text of ${key} parses back to the value given`);
    }
    env[key] = text as string;
  }
  return env;
}

/** A value as its variable's text (integers in their base unit, lists comma-separated). */
function envText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value.join(",");
  return undefined;
}
