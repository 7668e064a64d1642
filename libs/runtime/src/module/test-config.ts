import type { z } from "zod";
import { loadConfig } from "../config/load-config.js";

/**
 * A service's parsed config for a test without env strings: the schema's defaults plus typed
 * `overrides` (required keys without a default must be among them, else `ConfigError`).
 */
export function testConfig<S extends z.ZodObject>(
  schema: S,
  overrides: Partial<z.output<S>> = {},
): z.output<S> {
  return loadConfig(schema, {}, overrides);
}
