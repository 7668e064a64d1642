// The admin API through phoenix-admin against the five services on Postgres + NATS.
import { defineAdminScenarios } from "./support/admin-scenarios.js";

defineAdminScenarios("services");
