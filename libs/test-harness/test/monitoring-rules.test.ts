// The example alert rules name only metrics the services export: scraped from the real /metrics
// of the five processes of a deployment, so a renamed or removed metric fails here instead of
// leaving an alert that can never fire.
import { readFile } from "node:fs/promises";
import { parsePrometheusText } from "@phoenix/runtime/metrics";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { type Deployment, startDeployment } from "../src/index.js";

const RULES = new URL("../../../k8s/charts/phoenix/files/phoenix-alerts.yaml", import.meta.url);

/** Series Prometheus makes itself for every target. */
const SYNTHETIC = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);

/** PromQL words that look like metric names. */
const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "offset", "bool"]);

interface Rule {
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The metric names a PromQL expression selects (functions, keywords, label lists and matchers left out). */
function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replaceAll(/"(?:[^"\\]|\\.)*"/g, '""')
    .replaceAll(/\{[^}]*\}/g, "")
    .replaceAll(/\[[^\]]*\]/g, "")
    .replaceAll(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "")
    .replaceAll(/\boffset\s+\w+/g, "");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = match;
    if (call || KEYWORDS.has(name as string)) continue;
    names.add(name as string);
  }
  return [...names];
}

/** The family a sample name belongs to (`x_bucket` → `x` for histograms). */
function familyOf(name: string, families: ReadonlyMap<string, string>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return families.has(base) ? base : undefined;
}

describe("k8s/charts/phoenix/files/phoenix-alerts.yaml", () => {
  let deployment: Deployment | undefined;
  afterAll(async () => {
    await deployment?.stop();
  });

  it("is a Prometheus rule file whose every alert has an expression, a severity and a summary", async () => {
    const file = parseYaml(await readFile(RULES, "utf8")) as { groups: { name: string; rules: Rule[] }[] };
    expect(file.groups.length).toBeGreaterThan(0);
    for (const group of file.groups) {
      for (const rule of group.rules) {
        expect(rule.alert, `${group.name}: a rule without a name`).toMatch(/^Phoenix\w+$/);
        expect(rule.expr, `${rule.alert}: expr`).toEqual(expect.any(String));
        expect(rule.labels?.severity, `${rule.alert}: severity`).toMatch(/^(critical|warning|info)$/);
        expect(rule.annotations?.summary, `${rule.alert}: summary`).toEqual(expect.any(String));
        expect(metricNamesOf(rule.expr ?? "").length, `${rule.alert}: selects no metric`).toBeGreaterThan(0);
      }
    }
    // The parser itself: functions, label lists, matchers and durations are not metrics.
    expect(
      metricNamesOf('max by (stream, consumer) (rate(a_total{x="y"}[5m])) > on (service) b_gauge offset 10m'),
    ).toEqual(["a_total", "b_gauge"]);
  });

  it("names only metrics the five services export", async () => {
    const file = parseYaml(await readFile(RULES, "utf8")) as { groups: { rules: Rule[] }[] };
    const used = new Map<string, string>();
    for (const rule of file.groups.flatMap((g) => g.rules)) {
      for (const name of metricNamesOf(rule.expr ?? "")) used.set(name, rule.alert ?? "?");
    }

    deployment = await startDeployment({ kind: "services", domain: "monitoring.test", logLevel: "info" });
    const families = new Map<string, string>();
    const exportedBy = new Map<string, string[]>();
    for (const service of deployment.processes) {
      const port = await service.listeningPort("metrics listening");
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(response.status, `${service.name} /metrics`).toBe(200);
      const parsed = parsePrometheusText(await response.text());
      for (const [name, type] of parsed.families) {
        families.set(name, type);
        exportedBy.set(name, [...(exportedBy.get(name) ?? []), service.name]);
      }
    }
    const missing = [...used]
      .filter(([name]) => !SYNTHETIC.has(name) && familyOf(name, families) === undefined)
      .map(([name, alert]) => `${name} (${alert})`);
    expect(missing).toEqual([]);

    // The gauges of this work come from the services that own what they measure.
    expect(exportedBy.get("outbox_backlog_messages")?.sort()).toEqual(["delivery", "queue"]);
    expect(exportedBy.get("federation_outbound_queue_messages")).toEqual(["federation-gateway"]);
    for (const name of ["db_pool_waiting_clients", "bus_consumer_pending_messages"]) {
      expect(exportedBy.get(name)?.sort(), name).toEqual(["auth", "delivery", "federation-gateway", "queue"]);
    }
    expect(exportedBy.get("service_ready")?.length).toBe(5);
  });
});
