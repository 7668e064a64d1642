export {
  connectUsers,
  eventually,
  membersOf,
  syncUntil,
  systemTextsOf,
  TestClients,
  textsOf,
  WAIT_MS,
} from "./clients.js";
export {
  type Deployment,
  type DeploymentKind,
  type DeploymentOptions,
  DeploymentSetupError,
  type ServicesWiring,
  servicesWiring,
  startDeployment,
  TEST_LIMITS_ENV,
} from "./deployment.js";
export {
  type FederatedHomeserver,
  type Federation,
  type FederationLogLine,
  type FederationOptions,
  type FederationPolicy,
  FederationSetupError,
  startFederation,
} from "./federation.js";
export {
  HarnessSetupError,
  type Homeserver,
  type HomeserverAddresses,
  type HomeserverOptions,
  type LogLevel,
  startHomeserver,
} from "./homeserver.js";
export {
  type ActionKind,
  DEFAULT_WEIGHTS,
  RandomOpsError,
  type RandomOpsOptions,
  type RandomOpsReport,
  type RandomUser,
  runRandomOps,
} from "./random-ops.js";
export {
  FRESH_SEEDS,
  RANDOM_ACTIONS_ENV,
  RANDOM_ROUNDS_ENV,
  RANDOM_SEED_ENV,
  type RandomRunPlan,
  RandomSeedError,
  randomRuns,
  randomSeed,
} from "./random-prng.js";
export {
  type Exit,
  freePorts,
  HomeserverProcess,
  type LogLine,
  ProcessStartError,
  REPO_ROOT,
  ServiceProcess,
  type ServiceProcessOptions,
} from "./service-process.js";
