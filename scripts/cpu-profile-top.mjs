#!/usr/bin/env node
// Summarises V8 CPU profiles (`node --cpu-prof`): the functions with the most self time, the
// packages/files they belong to, and the inclusive time of functions whose name matches a filter.
// Usage: node scripts/cpu-profile-top.mjs <file.cpuprofile> [--top N] [--match REGEX]
//        [--window START_US END_US]   only samples in that window of the monotonic clock (µs,
//        `process.hrtime.bigint() / 1000n` in any process of the machine: V8's profile clock)
// Idle and GC are reported on their own lines; percentages are of the profile's non-idle samples.
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a));
if (!file) {
  console.error("usage: node scripts/cpu-profile-top.mjs <file.cpuprofile> [--top N] [--match REGEX]");
  process.exit(2);
}
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const top = Number(option("--top") ?? 30);
const match = option("--match");
const windowAt = args.indexOf("--window");
const window = windowAt >= 0 ? [Number(args[windowAt + 1]), Number(args[windowAt + 2])] : undefined;

const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample durations: timeDeltas[i] is the time before sample i.
const selfUs = new Map();
let at = profile.startTime;
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i] ?? 0;
  if (window && (at < window[0] || at > window[1])) return;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
});

/** Where a frame comes from: a package name, a repo-relative file, or a V8 category. */
function origin(frame) {
  const url = frame.url ?? "";
  if (!url) return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith("node:")) return url;
  const repo = url.replace(/^file:\/\//, "").replace(/^.*?\/(libs|services|scripts)\//, "$1/");
  return repo;
}

let total = 0;
let idle = 0;
const byFunction = new Map();
const byOrigin = new Map();
for (const [id, us] of selfUs) {
  const frame = nodes.get(id).callFrame;
  if (frame.functionName === "(idle)") {
    idle += us;
    continue;
  }
  total += us;
  const key = `${frame.functionName || "(anonymous)"}  ${origin(frame)}:${frame.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const o = origin(frame).replace(/^(libs|services)\/([^/]+)\/.*$/, "$1/$2");
  byOrigin.set(o, (byOrigin.get(o) ?? 0) + us);
}

const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${ms(total)} busy, ${ms(idle)} idle`);
console.log("\nself time by origin:");
for (const [o, us] of [...byOrigin].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${ms(us)} ${pct(us)}  ${o}`);
console.log("\nself time by function:");
for (const [f, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${ms(us)} ${pct(us)}  ${f}`);

if (match) {
  // Inclusive time: each sample counted once per distinct matching function on its stack.
  const re = new RegExp(match);
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    if (nodes.get(id).callFrame.functionName === "(idle)") continue;
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const frame = nodes.get(n).callFrame;
      if (!re.test(frame.functionName)) continue;
      const key = `${frame.functionName}  ${origin(frame)}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  console.log(`\ninclusive time of functions matching /${match}/:`);
  for (const [f, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${ms(us)} ${pct(us)}  ${f}`);
}
