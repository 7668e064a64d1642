// The chaos run (issue #17): a deployment on a private Postgres and NATS, clients that keep
// sending and changing groups, and a seeded schedule of faults — SIGKILLs of service processes
// (each restarted after a short delay), a NATS restart, a Postgres crash, a federation link cut.
// At the end, once everything is back, the clients' views are checked (workload.ts) and the
// counts reported. Two setups: `services` (the five services as processes, two replicas of DS and
// QS) and `federation` (two all-in-one homeserver processes federating through a cuttable proxy).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type PrivateNats, privateNats } from "@phoenix/runtime/testing";
import { TestClients } from "../clients.js";
import { startDeployment } from "../deployment.js";
import { startFederation } from "../federation.js";
import { freePorts, type ServiceProcess } from "../service-process.js";
import { type PrivatePostgres, privatePostgres } from "./private-postgres.js";
import { type ChaosEvent, chaosSchedule } from "./schedule.js";
import { type ChaosUser, Workload, type WorkloadCounts } from "./workload.js";

/** Which deployment the faults hit. */
export type ChaosSetup = "services" | "federation";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  setup: ChaosSetup;
  seed: number;
  /** SIGKILLs over the run. */
  kills: number;
  /** The window the faults fall in (the clients send during it). */
  durationMs: number;
  /** Users (default 4; `federation`: half on each domain). */
  users?: number;
  /** `services`: processes of the DS and of the QS (default 2 each). */
  replicas?: { delivery?: number; queue?: number };
  /** Group changes (remove, re-invite) during the faults (default true; see docs/chaos.md, "Open"). */
  groupChanges?: boolean;
  /** Restart NATS and crash Postgres once each (default true). */
  infrastructure?: boolean;
  /** Write every process's output there at the end (`<name>-<pid>.log`), killed ones included. */
  logDir?: string;
  /** Bound of the final catch-up (default 180 s). */
  settleTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What a run did and found. */
export interface ChaosReport {
  setup: ChaosSetup;
  seed: number;
  counts: WorkloadCounts;
  /** SIGKILLs per process name (replicas apart: `delivery-1`, …). */
  kills: Record<string, number>;
  natsRestarts: number;
  postgresRestarts: number;
  linkCuts: number;
  /**
   * Exits nobody caused, per process (a service that gave up, e.g. when Postgres crashed during
   * its start); the run restarts them as a supervisor (Kubernetes, systemd) would.
   */
  unplannedExits: Record<string, number>;
  /**
   * Fan-outs the QS skipped as already handled (`qs_fanouts_total{outcome="duplicate"}`), summed
   * over every process; scraped every 2 s, so a process's last counts before a kill may be lost.
   */
  duplicatesSuppressed: number;
  /** Every broken promise but per-sender order (empty: the run passed). */
  problems: string[];
  /**
   * Acknowledged messages shown after a later message of their sender. Kept apart: a known open
   * bug of the QS (a fan-out that fails or whose QS dies is redelivered after later ones were
   * enqueued; docs/chaos.md), so CI can hold everything else to zero while it is open.
   */
  orderViolations: string[];
  durationMs: number;
}

/** A setup as the fault runner sees it. */
interface System {
  url: string;
  /** Names of the processes a kill picks from. */
  targets: string[];
  crash(name: string): Promise<void>;
  respawn(name: string): Promise<void>;
  isRunning(name: string): boolean;
  processes(): readonly ServiceProcess[];
  /** Edge gateway base URLs, whose `/readyz` must answer 200 at the end. */
  readyUrls: string[];
  cutLink?(): Promise<void>;
  restoreLink?(): Promise<void>;
  /** Where user `i` registers. */
  homeOf(i: number): { url: string; domain: string };
  stop(): Promise<void>;
}

/** Runs one chaos setup to its end and reports; it throws only when it cannot start at all. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const [pgPort, natsPort] = (await freePorts(2)) as [number, number];
  const pg = await privatePostgres(pgPort);
  const nats = await privateNats(natsPort);
  const clients = await TestClients.create("phoenix-chaos-clients-");
  let system: System | undefined;
  /** Every process of the run, killed ones included (for `logDir`). */
  const seen = new Set<ServiceProcess>();
  try {
    await pg.start();
    await nats.start();
    log(`private Postgres on ${pg.port}, NATS on ${nats.port}`);
    system =
      options.setup === "services"
        ? await servicesSystem(pg, nats, {
            delivery: options.replicas?.delivery ?? 2,
            queue: options.replicas?.queue ?? 2,
          })
        : await federationSystem(pg, nats);
    log(`${options.setup} started: ${system.targets.join(", ")}`);
    const userCount = options.users ?? 4;
    const users: ChaosUser[] = [];
    for (let i = 0; i < userCount; i++) {
      const home = system.homeOf(i);
      const name = `u${i}`;
      users.push({ name, client: await clients.register(home.url, home.domain, name) });
    }
    const workload = new Workload({ seed: options.seed, users, log, groupChanges: options.groupChanges });
    await workload.setup();
    log("clients connected, groups created; chaos starts");

    const schedule = chaosSchedule({
      seed: options.seed,
      durationMs: options.durationMs,
      kills: options.kills,
      targets: system.targets,
      nats: options.infrastructure !== false,
      postgres: options.infrastructure !== false,
      link: system.cutLink !== undefined,
    });
    const scraper = new DuplicateScraper(system, seen);
    workload.start();
    const faults = await runFaults(schedule, options.durationMs, system, pg, nats, scraper, log);
    log("faults over; waiting for the clients' current actions");
    await workload.stop();
    const problems: string[] = [...faults.problems];
    problems.push(...(await everythingBack(system)));
    log("everything back; final catch-up");
    await workload.settle(options.settleTimeoutMs ?? 180_000);
    problems.push(...workload.check());
    const orderViolations = workload.orderViolations;
    await scraper.scrape();
    // The clients' stores keep what they showed: reopened, they show the same.
    const reopened = new Map(
      await Promise.all(
        users.map(async (u, i) => {
          await u.client.close();
          return [u.name, await clients.reopen(system?.homeOf(i).url ?? "", u.name)] as const;
        }),
      ),
    );
    problems.push(...workload.check(reopened).map((p) => `after reopening the stores: ${p}`));
    return {
      setup: options.setup,
      seed: options.seed,
      counts: workload.counts,
      kills: faults.kills,
      natsRestarts: faults.natsRestarts,
      postgresRestarts: faults.postgresRestarts,
      linkCuts: faults.linkCuts,
      unplannedExits: faults.unplannedExits,
      duplicatesSuppressed: scraper.total(),
      problems: [...new Set(problems)],
      orderViolations,
      durationMs: Date.now() - started,
    };
  } finally {
    if (options.logDir !== undefined && system !== undefined)
      await writeLogs(options.logDir, [...seen, ...system.processes()]).catch(() => undefined);
    await clients.close().catch(() => undefined);
    await system?.stop().catch(() => undefined);
    await nats.close().catch(() => undefined);
    await pg.close().catch(() => undefined);
  }
}

interface FaultOutcome {
  kills: Record<string, number>;
  unplannedExits: Record<string, number>;
  natsRestarts: number;
  postgresRestarts: number;
  linkCuts: number;
  problems: string[];
}

/** Plays `schedule`; each fault's recovery runs in the background so faults may overlap. */
async function runFaults(
  schedule: readonly ChaosEvent[],
  durationMs: number,
  system: System,
  pg: PrivatePostgres,
  nats: PrivateNats,
  scraper: DuplicateScraper,
  log: (line: string) => void,
): Promise<FaultOutcome> {
  const outcome: FaultOutcome = {
    kills: {},
    unplannedExits: {},
    natsRestarts: 0,
    postgresRestarts: 0,
    linkCuts: 0,
    problems: [],
  };
  /** Processes killed (or found dead) and not yet back: the supervisor leaves them alone. */
  const down = new Set<string>();
  const recoveries: Promise<void>[] = [];
  const start = Date.now();
  const respawn = (target: string, afterMs: number) =>
    recoveries.push(
      sleep(afterMs)
        .then(() => system.respawn(target))
        .then(
          () => log(`${target} is back`),
          (error: unknown) => log(`${target} did not start: ${String(error).slice(0, 300)}`),
        )
        // Back, or dead again: either way the supervisor watches it from here on.
        .finally(() => down.delete(target)),
    );
  // The supervisor: a process that exited without being killed is counted and restarted.
  let supervising = true;
  const supervisor = (async () => {
    while (supervising) {
      for (const target of system.targets) {
        if (down.has(target) || system.isRunning(target)) continue;
        down.add(target);
        outcome.unplannedExits[target] = (outcome.unplannedExits[target] ?? 0) + 1;
        log(`${target} exited on its own; restarting it`);
        respawn(target, 500);
      }
      await sleep(1000);
    }
  })();
  const recover = (what: string, downMs: number, back: () => Promise<void>) =>
    recoveries.push(
      sleep(downMs)
        .then(back)
        .catch((error: unknown) => {
          outcome.problems.push(`${what} did not come back: ${String(error).slice(0, 2000)}`);
        }),
    );
  for (const event of schedule) {
    await sleep(event.atMs - (Date.now() - start));
    await scraper.scrape();
    const at = `${((Date.now() - start) / 1000).toFixed(1)}s`;
    switch (event.kind) {
      case "kill": {
        // Everything down (two homeservers restarting): the kill waits for one to be back.
        for (let waited = 0; waited < 120_000 && down.size === system.targets.length; waited += 200)
          await sleep(200);
        // A process still down from an earlier kill: the next live one in the list takes its turn.
        const live = system.targets.filter((t) => !down.has(t));
        if (live.length === 0) break;
        const i = system.targets.indexOf(event.target);
        const target = down.has(event.target)
          ? (live.find((t) => system.targets.indexOf(t) > i) ?? (live[0] as string))
          : event.target;
        down.add(target);
        log(`${at} SIGKILL ${target} (back in ${event.downMs} ms)`);
        await system.crash(target);
        outcome.kills[target] = (outcome.kills[target] ?? 0) + 1;
        respawn(target, event.downMs);
        break;
      }
      case "restart-nats":
        log(`${at} NATS killed (back in ${event.downMs} ms)`);
        await nats.stop();
        outcome.natsRestarts++;
        recover("NATS", event.downMs, () => nats.start());
        break;
      case "restart-postgres":
        log(`${at} Postgres crashed (pg_ctl stop -m immediate; back in ${event.downMs} ms)`);
        await pg.crash();
        outcome.postgresRestarts++;
        recover("Postgres", event.downMs, () => pg.start());
        break;
      case "cut-link":
        if (!system.cutLink || !system.restoreLink) break;
        log(`${at} federation link cut (restored in ${event.downMs} ms)`);
        await system.cutLink();
        outcome.linkCuts++;
        recover("the federation link", event.downMs, system.restoreLink);
        break;
    }
  }
  // The clients keep going for the whole window, faults or not.
  await sleep(durationMs - (Date.now() - start));
  // Until every process is back (or a bound passes): restarts may fail and be retried.
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    await Promise.all(recoveries);
    if (down.size === 0 && system.targets.every((t) => system.isRunning(t))) break;
    await sleep(1000);
  }
  supervising = false;
  await supervisor;
  await Promise.all(recoveries);
  return outcome;
}

/** Every process running and every edge gateway's `/readyz` 200 within 120 s, else what is not. */
async function everythingBack(system: System): Promise<string[]> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const problems = system
      .processes()
      .filter((p) => !p.running)
      .map((p) => `${p.name} is down at the end`);
    for (const url of system.readyUrls) {
      const status = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })
        .then((r) => r.status)
        .catch(() => 0);
      if (status !== 200) problems.push(`${url}/readyz answers ${status || "nothing"} at the end`);
    }
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(500);
  }
}

/** Reads `qs_fanouts_total{outcome="duplicate"}` from every process's metrics endpoint. */
class DuplicateScraper {
  private readonly last = new Map<ServiceProcess, number>();

  constructor(
    private readonly system: System,
    private readonly seen: Set<ServiceProcess>,
  ) {}

  async scrape(): Promise<void> {
    await Promise.all(
      this.system.processes().map(async (p) => {
        this.seen.add(p);
        const line = p.lines.find((l) => l.msg === "metrics listening");
        if (line === undefined || !p.running) return;
        try {
          const text = await fetch(`http://127.0.0.1:${Number(line.port)}/metrics`, {
            signal: AbortSignal.timeout(2000),
          }).then((r) => r.text());
          let sum = 0;
          for (const m of text.matchAll(/^qs_fanouts_total\{[^}]*outcome="duplicate"[^}]*\} (\d+)/gm))
            sum += Number(m[1]);
          this.last.set(p, sum);
        } catch {
          // down or busy: the previous reading stands
        }
      }),
    );
  }

  total(): number {
    return [...this.last.values()].reduce((a, b) => a + b, 0);
  }
}

/** Five services, DS and QS twice, on the private Postgres and NATS. */
async function servicesSystem(
  pg: PrivatePostgres,
  nats: PrivateNats,
  replicas: { delivery: number; queue: number },
): Promise<System> {
  const deployment = await startDeployment({
    kind: "services",
    domain: "chaos.test",
    replicas,
    databaseUrl: pg.url,
    natsUrl: nats.url,
    // info: the metrics port of each process is on an info line.
    logLevel: "info",
  });
  return {
    url: deployment.url,
    targets: deployment.processes.map((p) => p.name),
    crash: (name) => deployment.crash(name),
    respawn: (name) => deployment.respawn(name),
    isRunning: (name) => deployment.processes.some((p) => p.name === name && p.running),
    processes: () => deployment.processes,
    readyUrls: [deployment.url],
    homeOf: () => ({ url: deployment.url, domain: deployment.domain }),
    stop: () => deployment.stop(),
  };
}

const DOMAINS = ["alpha.chaos", "beta.chaos"] as const;

/** Two all-in-one homeserver processes federating through link proxies. */
async function federationSystem(pg: PrivatePostgres, nats: PrivateNats): Promise<System> {
  const federation = await startFederation({
    domains: DOMAINS,
    processes: true,
    proxiedLinks: true,
    databaseUrl: pg.url,
    natsUrl: nats.url,
    logLevel: "info",
  });
  const node = (domain: string) => federation.homeserver(domain);
  return {
    url: node(DOMAINS[0]).url,
    targets: [...DOMAINS],
    crash: (domain) => node(domain).crash(),
    respawn: (domain) => node(domain).restart(),
    isRunning: (domain) => node(domain).running,
    processes: () => DOMAINS.flatMap((d) => node(d).processes),
    readyUrls: DOMAINS.map((d) => node(d).url),
    async cutLink() {
      for (const d of DOMAINS) await federation.link(d).cut();
    },
    async restoreLink() {
      for (const d of DOMAINS) await federation.link(d).restore();
    },
    homeOf: (i) => {
      const domain = DOMAINS[i % DOMAINS.length] as string;
      return { url: node(domain).url, domain };
    },
    stop: () => federation.stopAll(),
  };
}

/** The counts of `reports` as a table (one column per setup). */
export function formatChaosReports(reports: readonly ChaosReport[]): string {
  const rows: [string, (r: ChaosReport) => string][] = [
    ["seed", (r) => String(r.seed)],
    ["duration", (r) => `${Math.round(r.durationMs / 1000)} s`],
    ["messages sent", (r) => String(r.counts.sent)],
    ["acknowledged", (r) => String(r.counts.acknowledged)],
    ["delivered (copies at recipients)", (r) => String(r.counts.delivered)],
    ["duplicates suppressed (QS)", (r) => String(r.duplicatesSuppressed)],
    ["group changes", (r) => String(r.counts.groupChanges)],
    ["client retries", (r) => String(r.counts.retries)],
    ["failed syncs", (r) => String(r.counts.failedSyncs)],
    ["kills (total)", (r) => String(Object.values(r.kills).reduce((a, b) => a + b, 0))],
    [
      "kills by process",
      (r) =>
        Object.entries(r.kills)
          .sort()
          .map(([k, v]) => `${k} ${v}`)
          .join(", "),
    ],
    [
      "exits nobody caused",
      (r) =>
        Object.entries(r.unplannedExits)
          .sort()
          .map(([k, v]) => `${k} ${v}`)
          .join(", ") || "0",
    ],
    ["NATS restarts", (r) => String(r.natsRestarts)],
    ["Postgres restarts", (r) => String(r.postgresRestarts)],
    ["federation link cuts", (r) => String(r.linkCuts)],
    ["per-sender order violations", (r) => String(r.orderViolations.length)],
    ["problems", (r) => String(r.problems.length)],
  ];
  const header = ["", ...reports.map((r) => r.setup)];
  const body = rows.map(([label, value]) => [label, ...reports.map(value)]);
  const widths = header.map((_, c) => Math.max(...[header, ...body].map((row) => (row[c] ?? "").length)));
  return [header, ...body]
    .map((row) => row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(" | "))
    .join("\n");
}

async function writeLogs(dir: string, processes: readonly ServiceProcess[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const p of new Set(processes)) await writeFile(join(dir, `${p.name}-${p.pid}.log`), p.output);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
