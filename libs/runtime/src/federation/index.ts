export { federationRouterConfig } from "./config.js";
export {
  type FederatedUnaryOptions,
  FederationRouter,
  type FederationRouterOptions,
  federatedUnary,
  serviceFederationRouter,
} from "./router.js";
