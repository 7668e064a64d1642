/** One sample of a scrape: `name{labels} value`. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A `/metrics` answer: its samples and the families it declares (`# TYPE` lines, samples or not). */
export interface ParsedMetrics {
  readonly samples: readonly MetricSample[];
  /** Family name → type (`counter`, `gauge`, `histogram`, `summary`, `untyped`). */
  readonly families: ReadonlyMap<string, string>;
}

/**
 * Parses the Prometheus text exposition format as prom-client writes it (tests and tools: it
 * reads label values with escaped quotes but not timestamps or exemplars).
 */
export function parsePrometheusText(text: string): ParsedMetrics {
  const samples: MetricSample[] = [];
  const families = new Map<string, string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][\w:]*) (\w+)$/.exec(line);
    if (type) {
      families.set(type[1] as string, type[2] as string);
      continue;
    }
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = (value as string).replaceAll(/\\(.)/g, (_, c: string) =>
        c === "n" ? "\n" : c,
      );
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return { samples, families };
}

/**
 * The value of the first sample named `name` whose labels include `labels`; undefined when
 * there is none.
 */
export function sampleValue(
  parsed: ParsedMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  return parsed.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  )?.value;
}
