// Each concern is also importable on its own, e.g. `@phoenix/runtime/bus`.
export * from "./bus/types.js";
