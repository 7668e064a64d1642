// The e2e scenarios against the all-in-one homeserver process (PGlite + embedded bus).
import { defineScenarios } from "./support/e2e/scenarios.js";

defineScenarios("all-in-one");
