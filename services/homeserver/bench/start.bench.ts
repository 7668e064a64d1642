// The all-in-one homeserver's weight as `npm start` runs it (built JavaScript, embedded storage):
// time to "homeserver ready" on a fresh data directory and on reopen (of the built main.js, and
// of the whole `npm start` with its build check), and the resident memory (ps -o rss) idle after
// two users registered.
// Usage: npm run bench -- start   (PHOENIX_BENCH_RUNS=5; --quick: one run, figures meaningless)
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { TestClients } from "@phoenix/test-harness";

const QUICK = process.env.PHOENIX_BENCH_QUICK === "1";
const RUNS = QUICK ? 1 : Number(process.env.PHOENIX_BENCH_RUNS ?? 5);
/** A start that takes longer is a failure, not a figure. */
const START_LIMIT_MS = 180_000;
/** Idle time before the memory is read: the start's garbage settles, timers run once. */
const IDLE_MS = QUICK ? 500 : 5_000;
const ROOT = new URL("../../../", import.meta.url).pathname;
const MAIN = join(ROOT, "services", "homeserver", "dist", "main.js");

interface Started {
  pid: number;
  url: string;
  readyMs: number;
  stop(): Promise<void>;
}

/**
 * Spawns the homeserver on `dataDir` — the built main.js, or the whole `npm start` (npm, the
 * build check of scripts/start.mjs, then main.js) — and waits (bounded) for its ready line.
 */
function startHomeserver(dataDir: string, via: "node" | "npm start" = "node"): Promise<Started> {
  const began = performance.now();
  const flags = ["--data-dir", dataDir, "--port", "0"];
  const [command, args] =
    via === "node" ? [process.execPath, [MAIN, ...flags]] : ["npm", ["start", "--silent", "--", ...flags]];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", METRICS_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: npm's children stop with it
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
    await exited;
  };
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`not ready within ${START_LIMIT_MS} ms:\n${output.slice(-4000)}`));
    }, START_LIMIT_MS);
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split("\n").find((l) => l.includes('"homeserver ready'));
      if (!line) return;
      const readyMs = performance.now() - began;
      clearTimeout(timer);
      child.stdout.removeAllListeners("data");
      child.stdout.resume();
      const url = String((JSON.parse(line) as { url?: string }).url);
      resolve({ pid: child.pid ?? -1, url, readyMs, stop });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the homeserver exited with ${code} before ready:\n${output.slice(-4000)}`));
    });
  });
}

function rssMb(pid: number): number {
  return Number(execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).trim()) / 1024;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Brings dist up to date (and the build stamp with it) through the start script's own check. */
function build(): void {
  execFileSync(process.execPath, [join(ROOT, "scripts", "start.mjs"), "--help"], {
    cwd: ROOT,
    stdio: "ignore",
  });
}

function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

function summary(label: string, values: number[], unit: string, digits = 0): void {
  const shown = values.map((v) => v.toFixed(digits)).join(", ");
  console.log(`${label.padEnd(34)} median ${median(values).toFixed(digits)} ${unit}   (${shown})`);
}

build();
const loadBefore = loadavg();
const viaNpm: number[] = [];
const first: number[] = [];
const reopen: number[] = [];
const rss: number[] = [];
const rssStarted: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const dataDir = await mkdtemp(join(tmpdir(), "homeserver-bench-"));
  try {
    const fresh = await startHomeserver(dataDir);
    first.push(fresh.readyMs);
    await fresh.stop();
    const npmStart = await startHomeserver(dataDir, "npm start");
    viaNpm.push(npmStart.readyMs);
    await npmStart.stop();
    const again = await startHomeserver(dataDir);
    reopen.push(again.readyMs);
    try {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      rssStarted.push(rssMb(again.pid));
      const clients = await TestClients.create("homeserver-bench-clients-");
      try {
        await clients.register(again.url, "localhost", "alice");
        await clients.register(again.url, "localhost", "bob");
      } finally {
        await clients.close();
      }
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      rss.push(rssMb(again.pid));
    } finally {
      await again.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

console.log(
  `all-in-one homeserver, built JavaScript, embedded storage; ${RUNS} run(s)${QUICK ? " (quick)" : ""}`,
);
console.log(
  `load average before: ${loadBefore}, after: ${loadavg()} (${process.arch}, Node ${process.version})`,
);
summary("ready, first start (fresh dir)", first, "ms");
summary("ready, reopen", reopen, "ms");
summary("ready, reopen through npm start", viaNpm, "ms");
summary("RSS idle after start", rssStarted, "MB");
summary("RSS idle after 2 users registered", rss, "MB");
