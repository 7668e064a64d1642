export {
  type AddressMatcher,
  type CallerCall,
  callerAddress,
  callerAddressOf,
  FORWARDED_FOR_KEY,
  forwardedHops,
  MAX_ADDRESS_LENGTH,
  ORIGIN_DOMAIN_KEY,
  peerHost,
  TrustedProxyError,
  trustedProxies,
} from "./caller-address.js";
export { NamedRateLimit, type NamedRateLimitOptions, rateLimitExceeded } from "./named-rate-limit.js";
export {
  SharedRateLimits,
  SharedRateLimitsError,
  type SharedRateLimitsOptions,
} from "./shared-rate-limits.js";
export { ensureRateLimitSchema, rateLimitBuckets, rateLimitSchema } from "./shared-schema.js";
export {
  type TokenBucket,
  TokenBucketLimiter,
  type TokenBucketOptions,
  type TokenTake,
  takeToken,
} from "./token-bucket.js";
