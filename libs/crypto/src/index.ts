export * from "./bytes.js";
export * from "./codec.js";
export * from "./errors.js";
