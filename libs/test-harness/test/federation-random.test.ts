// Seeded randomized operations by real clients (libs/test-harness/src/random-ops.ts): first on
// one homeserver (cheap, catches client bugs), then over three federating domains. CI runs the
// fixed seeds below, which pass, so the file is deterministic; `PHOENIX_RANDOM_SEED=<seed>`
// replays one seed and `PHOENIX_RANDOM_SEED=random` (or `npm run test:random`) explores fresh ones
// (docs/federation-testing.md). Every run prints its seed; a failure names it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGrpcTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Federation, startFederation } from "../src/federation.js";
import { type Homeserver, startHomeserver } from "../src/homeserver.js";
import { type RandomUser, runRandomOps } from "../src/random-ops.js";
import { type RandomRunPlan, randomRuns } from "../src/random-prng.js";

/** Actions of a full run (and of every replayed or fresh seed). */
const ACTIONS = 200;

/**
 * The seeds CI runs on one homeserver (about a minute each on a 2-core machine; the file stays
 * within about six minutes). Each found a bug, now fixed (libs/client/test/late-messages.test.ts):
 * 129322668 a message of the previous epoch without sender, 1781965124 a removed member's send
 * refused UNAUTHENTICATED instead of ConversationInactiveError, 395784966 an invitee removed
 * before it joined refused its tree.
 */
const CI_ONE_HOMESERVER: readonly RandomRunPlan[] = [
  { seed: 129322668, actions: ACTIONS },
  { seed: 1781965124, actions: ACTIONS },
  { seed: 395784966, actions: ACTIONS },
];

/** The seed CI runs over three domains (a full run). */
const CI_THREE_DOMAINS: readonly RandomRunPlan[] = [{ seed: 367947276, actions: ACTIONS }];

const verbose = process.env.PHOENIX_RANDOM_VERBOSE === "1";
const log = verbose ? (line: string) => process.stdout.write(`${line}\n`) : undefined;

describe("randomized operations on one homeserver", () => {
  let hs: Homeserver;
  const transports: Transport[] = [];
  const clients: PhoenixClient[] = [];
  const dir = mkdtempSync(join(tmpdir(), "phoenix-random-"));

  beforeAll(async () => {
    hs = await startHomeserver({ domain: "alpha.example" });
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const t of transports) t.close();
    await hs?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [round, { seed, actions }] of randomRuns(CI_ONE_HOMESERVER, ACTIONS).entries())
    it(`seed ${seed}: 10 users, ${actions} actions: every view agrees and every message arrives once`, async () => {
      process.stdout.write(`one homeserver: seed ${seed}, ${actions} actions\n`);
      // Fresh users for every seed: the model of a run starts empty.
      const users: RandomUser[] = [];
      for (let i = 0; i < 10; i++) {
        const transport = createGrpcTransport(hs.addresses);
        transports.push(transport);
        const name = `u${i}`;
        const client = await PhoenixClient.register({
          transport,
          storePath: join(dir, `r${round}-${name}.sqlite`),
          domain: hs.domain,
          displayName: name,
        });
        clients.push(client);
        users.push({ name, domain: hs.domain, client });
      }
      const report = await runRandomOps({ seed, users, actions, ...(log ? { log } : {}) });
      process.stdout.write(`one homeserver, seed ${seed}: ${JSON.stringify(report.counts)}\n`);
      expect(report.counts.send).toBeGreaterThan(0);
    }, 600_000);
});

describe("randomized operations over three federating domains", () => {
  const domains = ["alpha.test", "beta.test", "gamma.test"];
  let fed: Federation;

  beforeAll(async () => {
    fed = await startFederation({ domains, tls: true });
  }, 180_000);
  afterAll(async () => {
    await fed?.stopAll();
  }, 60_000);

  for (const { seed, actions } of randomRuns(CI_THREE_DOMAINS, ACTIONS))
    it(`seed ${seed}: 10 users on 3 domains (3/3/4), ${actions} actions: every view agrees and every message arrives once`, async () => {
      process.stdout.write(`three domains: seed ${seed}, ${actions} actions\n`);
      const users: RandomUser[] = [];
      const perDomain = [3, 3, 4];
      for (const [d, domain] of domains.entries())
        for (let i = 0; i < (perDomain[d] ?? 0); i++) {
          const name = `${domain.slice(0, 1)}${i}`;
          users.push({ name, domain, client: await fed.client(domain, name) });
        }
      const report = await runRandomOps({ seed, users, actions, ...(log ? { log } : {}) });
      process.stdout.write(`three domains, seed ${seed}: ${JSON.stringify(report.counts)}\n`);
      expect(report.counts.send).toBeGreaterThan(0);
    }, 1_200_000);
});
