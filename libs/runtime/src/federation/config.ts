import { z } from "zod";
import { envString } from "../config/fields.js";

/**
 * Env fragment of every service that serves federated RPCs (AS, DS, QS); merge it into the
 * service's config schema (`...federationRouterConfig.shape`).
 */
export const federationRouterConfig = z.object({
  /**
   * `host:port` of the federation gateway's internal FederationProxyService listener. Unset:
   * requests that concern another domain are answered UNAVAILABLE.
   */
  FEDERATION_PROXY_ADDRESS: envString({
    optional: true,
    pattern: /^[^\s:/]+:\d{1,5}$/,
    patternHint: "must be host:port",
  }),
});
