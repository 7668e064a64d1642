// The e2e scenarios against the five services as separate processes on Postgres + NATS JetStream.
import { defineScenarios } from "./support/e2e/scenarios.js";

defineScenarios("services");
