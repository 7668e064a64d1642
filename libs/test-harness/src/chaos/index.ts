export {
  POSTGRES_BIN,
  type PrivatePostgres,
  PrivatePostgresError,
  privatePostgres,
} from "./private-postgres.js";
export { type ChaosOptions, type ChaosReport, type ChaosSetup, formatChaosReports, runChaos } from "./run.js";
export { type ChaosEvent, chaosSchedule, type ScheduleOptions } from "./schedule.js";
export { type ChaosUser, Workload, type WorkloadCounts, type WorkloadOptions } from "./workload.js";
