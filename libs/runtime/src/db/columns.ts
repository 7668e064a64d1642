import { bigint, customType } from "drizzle-orm/pg-core";

/**
 * `bytea` column whose values are plain `Uint8Array`s on both drivers. node-postgres returns a
 * `Buffer` (often a view into a shared pool slab), so reads are copied into a fresh `Uint8Array`:
 * no `Buffer` and no foreign bytes leak into service code.
 */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType() {
    return "bytea";
  },
  toDriver(value: Uint8Array): Uint8Array {
    return value;
  },
  fromDriver(value: unknown): Uint8Array {
    if (value instanceof Uint8Array) {
      // A Buffer is a Uint8Array subclass: copy it so callers get the plain type.
      return Object.getPrototypeOf(value) === Uint8Array.prototype ? value : new Uint8Array(value);
    }
    if (typeof value === "string" && value.startsWith("\\x")) {
      // Text-format bytea (only seen with custom type parsers): hex after the `\x` prefix.
      return new Uint8Array(Buffer.from(value.slice(2), "hex"));
    }
    throw new TypeError(`bytea column: unexpected driver value of type ${typeof value}`);
  },
});

/** `bigint` (int8) column read and written as a JS `bigint`, never a lossy `number`. */
export function int8<TName extends string>(name: TName) {
  return bigint(name, { mode: "bigint" });
}
