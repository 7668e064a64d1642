export * from "./bytes.js";
export * from "./codec.js";
export * from "./envelope.js";
export * from "./errors.js";
export * from "./hash.js";
export * from "./labels.js";
export * from "./signature.js";
