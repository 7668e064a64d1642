export * from "./connection.js";
export * from "./friendship.js";
export * from "./handle.js";
export * from "./queue-config.js";
export * from "./user-profile.js";
export * from "./welcome-attribution.js";
