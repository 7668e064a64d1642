// The admin API through phoenix-admin against the all-in-one homeserver.
import { defineAdminScenarios } from "./support/admin-scenarios.js";

defineAdminScenarios("all-in-one");
