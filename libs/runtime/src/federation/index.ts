export { federationRouterConfig } from "./config.js";
export { FederationRouter, type FederationRouterOptions, federatedUnary } from "./router.js";
