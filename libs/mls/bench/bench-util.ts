/** Median wall time in milliseconds of `runs` calls of `f` after `warmup` unmeasured calls. */
export async function medianMs(f: () => Promise<unknown>, runs: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

/** Operations per second of `f` measured over roughly `ms` milliseconds. */
export async function opsPerSecond(f: () => Promise<unknown>, ms = 300): Promise<number> {
  for (let i = 0; i < 20; i++) await f();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await f();
    n++;
  }
  return (n * 1000) / (performance.now() - t0);
}

/** Print rows as an aligned text table. */
export function printTable(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === "number" ? format(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  for (const r of cells) console.log(r.map((c, i) => String(c).padStart(widths[i] ?? 0)).join("  "));
}

function format(n: number): string {
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
