// Seeded randomized operations by real clients (libs/test-harness/src/random-ops.ts): first on
// one homeserver (cheap, catches client bugs), then over three federating domains. A failure
// names its seed; `PHOENIX_RANDOM_SEED=<seed>` replays it (docs/federation-testing.md).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGrpcTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Federation, startFederation } from "../src/federation.js";
import { type Homeserver, startHomeserver } from "../src/homeserver.js";
import { type RandomUser, runRandomOps } from "../src/random-ops.js";
import { randomSeed } from "../src/random-prng.js";

const ACTIONS = Number(process.env.PHOENIX_RANDOM_ACTIONS ?? 200);
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

  it(`10 users, ${ACTIONS} actions: every view agrees and every message arrives once`, async () => {
    const seed = randomSeed();
    const users: RandomUser[] = [];
    for (let i = 0; i < 10; i++) {
      const transport = createGrpcTransport(hs.addresses);
      transports.push(transport);
      const name = `u${i}`;
      const client = await PhoenixClient.register({
        transport,
        storePath: join(dir, `${name}.sqlite`),
        domain: hs.domain,
        displayName: name,
      });
      clients.push(client);
      users.push({ name, domain: hs.domain, client });
    }
    const report = await runRandomOps({ seed, users, actions: ACTIONS, ...(log ? { log } : {}) });
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

  it(`10 users on 3 domains (3/3/4), ${ACTIONS} actions: every view agrees and every message arrives once`, async () => {
    const seed = randomSeed();
    const users: RandomUser[] = [];
    const perDomain = [3, 3, 4];
    for (const [d, domain] of domains.entries())
      for (let i = 0; i < (perDomain[d] ?? 0); i++) {
        const name = `${domain.slice(0, 1)}${i}`;
        users.push({ name, domain, client: await fed.client(domain, name) });
      }
    const report = await runRandomOps({ seed, users, actions: ACTIONS, ...(log ? { log } : {}) });
    process.stdout.write(`three domains, seed ${seed}: ${JSON.stringify(report.counts)}\n`);
    expect(report.counts.send).toBeGreaterThan(0);
  }, 1_200_000);
});
