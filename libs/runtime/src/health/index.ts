export {
  type BackoffOptions,
  backoffDelay,
  DEFAULT_INITIAL_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  type RetryOptions,
  retryWithBackoff,
} from "./backoff.js";
export { answerProbe, PROBE_PATHS } from "./probe-endpoints.js";
export {
  type DependencyHandle,
  type DependencyState,
  Readiness,
  type ReadinessCheck,
  type ReadinessReport,
} from "./readiness.js";
export { dependencyUnavailable, unreachableDependency } from "./unavailable.js";
export { type DependencyWatch, type WatchDependencyOptions, watchDependency } from "./watch.js";
