// Renders a Helm chart into Kubernetes objects: with `helm template` when a helm binary is on PATH,
// else with k8s/tools/helm-render (Helm's template engine in Go, built once and cached outside the
// repository). values.schema.json is checked here for the Go renderer, with Helm's error format.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { parse as parseYaml } from "yaml";
import { asKubeObject, type KubeObject, parseManifests, setTemplate } from "./objects.js";

/** k8s/tools/helm-render, found from this file (libs/test-harness/src/kube). */
export const HELM_RENDER_DIR = resolve(
  fileURLToPath(new URL(".", import.meta.url)),
  "../../../../k8s/tools/helm-render",
);

/** A `--set` value; a list becomes Helm's `{a,b}` list syntax. */
export type SetValue = string | number | boolean | null | readonly (string | number | boolean)[];

/** Value assignments like `--set`: `{ "image.tag": "1.2.3" }` or `["image.tag=1.2.3"]`. */
export type SetValues = Readonly<Record<string, SetValue>> | readonly string[];

export interface RenderChartOptions {
  chartDir: string;
  releaseName: string;
  /** `.Release.Namespace` (default `default`). */
  namespace?: string;
  /** `-f` files, later ones win. */
  valuesFiles?: readonly string[];
  /** `--set` (typed like Helm: integers, true/false, null). */
  set?: SetValues;
  /** `--set-string`. */
  setString?: Readonly<Record<string, string>>;
  /** `.Release.IsUpgrade` (and IsInstall false). */
  isUpgrade?: boolean;
  /** `.Release.Revision` (Go renderer only; `helm template` always uses 1). */
  revision?: number;
  /** `.Capabilities.KubeVersion` (default v1.30.0). */
  kubeVersion?: string;
  /** Extra `.Capabilities.APIVersions`, e.g. `monitoring.coreos.com/v1`. */
  apiVersions?: readonly string[];
  /**
   * Objects already in the cluster that the chart's `lookup` may return (e.g. the Secret of a
   * previous install). Only the Go renderer can answer lookups (`helm template` has no cluster).
   */
  lookup?: readonly KubeObject[];
  /** `auto` (default; also `$PHOENIX_HELM_ENGINE`): helm when on PATH, else the Go renderer. */
  engine?: "auto" | "helm" | "go";
}

/** One rendered chart. */
export interface ChartRender {
  engine: "helm" | "go";
  /** Every object in `helm template` order: release objects by kind, then hooks by weight. */
  objects: KubeObject[];
  /** The manifests as `helm template` prints them (`---` / `# Source:` / the template's text). */
  manifest: string;
  /** The rendered NOTES.txt (Go renderer; empty with helm). */
  notes: string;
  /** The coalesced values the templates saw (Go renderer; undefined with helm). */
  values: Record<string, unknown> | undefined;
  warnings: string[];
}

/** A value that does not meet values.schema.json. */
export interface ValuesProblem {
  /** Dotted value path, `image.tag`. */
  path: string;
  message: string;
}

/** The values do not meet values.schema.json (message in Helm's words, one line per problem). */
export class ChartValuesError extends Error {
  override readonly name = "ChartValuesError";
  constructor(
    readonly chart: string,
    readonly problems: readonly ValuesProblem[],
  ) {
    super(
      `values don't meet the specifications of the schema(s) in the following chart(s):\n${chart}:\n${problems
        .map((p) => `- ${p.path}: ${p.message}`)
        .join("\n")}`,
    );
  }
}

/** A template failed (`required`, `fail`, a YAML error) or the renderer could not run. */
export class ChartRenderError extends Error {
  override readonly name = "ChartRenderError";
}

/** Renders the chart; the objects in `helm template` order (`templateOf` gives each one's template). */
export async function renderChart(options: RenderChartOptions): Promise<KubeObject[]> {
  return (await renderChartRelease(options)).objects;
}

/** Renders the chart with everything the renderer reports (notes, coalesced values, warnings). */
export async function renderChartRelease(options: RenderChartOptions): Promise<ChartRender> {
  const engine = await chooseEngine(options);
  return engine === "helm" ? renderWithHelm(options) : renderWithGo(options);
}

async function chooseEngine(options: RenderChartOptions): Promise<"helm" | "go"> {
  const wanted =
    options.engine ?? (process.env.PHOENIX_HELM_ENGINE as RenderChartOptions["engine"]) ?? "auto";
  if (wanted === "go" || options.lookup !== undefined) return "go";
  if (wanted === "helm") return "helm";
  return onPath("helm") ? "helm" : "go";
}

/** Whether an executable is on PATH. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** Whether this machine can render charts at all (helm, or Go for the renderer). */
export function canRenderCharts(): { ok: boolean; reason: string } {
  if (onPath("helm")) return { ok: true, reason: "helm" };
  if (onPath("go")) return { ok: true, reason: "go (k8s/tools/helm-render)" };
  return {
    ok: false,
    reason:
      "neither helm nor go is on PATH (apt-get install golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev)",
  };
}

function setArguments(set: SetValues | undefined): string[] {
  if (set === undefined) return [];
  if (Array.isArray(set)) return (set as readonly string[]).flatMap((s) => ["--set", s]);
  return Object.entries(set as Record<string, SetValue>).flatMap(([key, value]) => [
    "--set",
    `${key}=${
      value === null
        ? "null"
        : Array.isArray(value)
          ? `{${value.map((v) => escapeSetValue(String(v))).join(",")}}`
          : escapeSetValue(String(value))
    }`,
  ]);
}

/** `--set` splits on commas and treats backslashes as escapes. */
function escapeSetValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/,/g, "\\,");
}

function commonArguments(options: RenderChartOptions): string[] {
  return [
    ...(options.valuesFiles ?? []).flatMap((f) => ["--values", f]),
    ...setArguments(options.set),
    ...Object.entries(options.setString ?? {}).flatMap(([k, v]) => [
      "--set-string",
      `${k}=${escapeSetValue(v)}`,
    ]),
    ...(options.isUpgrade ? ["--is-upgrade"] : []),
    ...(options.kubeVersion ? ["--kube-version", options.kubeVersion] : []),
    ...(options.apiVersions ?? []).flatMap((a) => ["--api-versions", a]),
  ];
}

function run(
  file: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { env: env ?? process.env, cwd, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          reject(new ChartRenderError(`cannot run ${file}: ${error.message}`));
          return;
        }
        resolvePromise({ stdout, stderr, code: error ? Number(error.code) : 0 });
      },
    );
  });
}

async function renderWithHelm(options: RenderChartOptions): Promise<ChartRender> {
  const args = [
    "template",
    options.releaseName,
    options.chartDir,
    "--namespace",
    options.namespace ?? "default",
    ...commonArguments(options),
  ];
  const result = await run("helm", args);
  if (result.code !== 0) throw new ChartRenderError(result.stderr.trim().replace(/^Error: /, ""));
  return {
    engine: "helm",
    objects: parseManifests(result.stdout),
    manifest: result.stdout,
    notes: "",
    values: undefined,
    warnings: [],
  };
}

interface GoRenderOutput {
  values: Record<string, unknown> | null;
  manifests: { source: string; content: string; object: unknown }[];
  notes: string;
  warnings: string[];
  error?: string;
}

async function renderWithGo(options: RenderChartOptions): Promise<ChartRender> {
  const binary = await helmRenderBinary();
  let lookupFile: string | undefined;
  try {
    if (options.lookup) {
      lookupFile = join(tmpdir(), `phoenix-lookup-${process.pid}-${randomBytes(4).toString("hex")}.json`);
      await writeFile(lookupFile, JSON.stringify(options.lookup));
    }
    const args = [
      "--output",
      "json",
      "--release",
      options.releaseName,
      "--chart",
      options.chartDir,
      "--namespace",
      options.namespace ?? "default",
      "--revision",
      String(options.revision ?? 1),
      ...(lookupFile ? ["--lookup", lookupFile] : []),
      ...commonArguments(options),
    ];
    const result = await run(binary, args);
    if (result.code !== 0) throw new ChartRenderError(result.stderr.trim().replace(/^Error: /, ""));
    const output = JSON.parse(result.stdout) as GoRenderOutput;
    // Helm checks the schema before it renders: a schema problem is reported first.
    if (output.values) await checkValues(options.chartDir, output.values);
    if (output.error) throw new ChartRenderError(output.error);
    const objects = output.manifests.map((m) => {
      const object = asKubeObject(m.object, m.source);
      setTemplate(object, m.source);
      return object;
    });
    return {
      engine: "go",
      objects,
      manifest: output.manifests.map((m) => `---\n# Source: ${m.source}\n${m.content}\n`).join(""),
      notes: output.notes,
      values: output.values ?? undefined,
      warnings: output.warnings ?? [],
    };
  } finally {
    if (lookupFile) await rm(lookupFile, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// values.schema.json

const validators = new Map<string, Promise<ValidateFunction | undefined>>();

function schemaValidator(chartDir: string): Promise<ValidateFunction | undefined> {
  const file = join(chartDir, "values.schema.json");
  let validator = validators.get(file);
  if (!validator) {
    validator = (async () => {
      if (!existsSync(file)) return undefined;
      const schema = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
      // Helm validates JSON Schema drafts 4–7 (and newer); the chart declares draft-07.
      const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
      return ajv.compile(schema);
    })();
    validators.set(file, validator);
  }
  return validator;
}

/** Checks coalesced values against the chart's values.schema.json; throws {@link ChartValuesError}. */
export async function checkValues(chartDir: string, values: Record<string, unknown>): Promise<void> {
  const validate = await schemaValidator(chartDir);
  if (!validate || validate(values)) return;
  const problems = describeSchemaErrors(validate.errors ?? []);
  const chart = (parseYaml(await readFile(join(chartDir, "Chart.yaml"), "utf8")) as { name?: string }).name;
  throw new ChartValuesError(chart ?? chartDir, problems);
}

function dottedPath(instancePath: string): string {
  const parts = instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  return parts.length === 0
    ? "(root)"
    : parts
        .map((p) => (/^\d+$/.test(p) ? `[${p}]` : p))
        .join(".")
        .replace(/\.\[/g, "[");
}

/** ajv errors as one line per value path, with the schema's description to say what is expected. */
function describeSchemaErrors(errors: readonly ErrorObject[]): ValuesProblem[] {
  const problems: ValuesProblem[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    // `type: [a, b]` with a pattern on one branch repeats itself; keep the first line per path+keyword.
    let path = dottedPath(error.instancePath);
    let message: string;
    switch (error.keyword) {
      case "additionalProperties": {
        const extra = String((error.params as { additionalProperty?: string }).additionalProperty);
        path = path === "(root)" ? extra : `${path}.${extra}`;
        message = "is not a value of this chart (a typo? see values.yaml / README.md)";
        break;
      }
      case "not":
        message = `must not be ${JSON.stringify(error.data)}`;
        break;
      case "enum":
        message = `must be one of ${((error.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(", ")}, not ${JSON.stringify(error.data)}`;
        break;
      case "pattern":
        message = `${JSON.stringify(error.data)} does not match the pattern ${(error.params as { pattern?: string }).pattern}`;
        break;
      default:
        message = `${error.message ?? "is invalid"}${error.data !== undefined && typeof error.data !== "object" ? ` (got ${JSON.stringify(error.data)})` : ""}`;
    }
    const description = (error.parentSchema as { description?: string } | undefined)?.description;
    if (description && error.keyword !== "additionalProperties") message += ` — ${description}`;
    const key = `${path}\u0000${error.keyword}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ path, message });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The Go renderer binary

let binaryPromise: Promise<string> | undefined;

/** Where built tools are kept: `$PHOENIX_TOOL_CACHE`, else `~/.cache/phoenix` (outside the repository). */
export function toolCacheDir(): string {
  return process.env.PHOENIX_TOOL_CACHE ?? join(homedir(), ".cache", "phoenix");
}

/**
 * Path of the helm-render binary, built with Go (GOPATH mode: Debian's Sprig and sigs.k8s.io/yaml
 * under /usr/share/gocode) on first use and cached under {@link toolCacheDir} by the hash of its
 * source, so a changed main.go is rebuilt and concurrent test files share one build.
 */
export function helmRenderBinary(): Promise<string> {
  binaryPromise ??= buildHelmRender().catch((error: unknown) => {
    binaryPromise = undefined;
    throw error;
  });
  return binaryPromise;
}

async function buildHelmRender(): Promise<string> {
  const source = await readFile(join(HELM_RENDER_DIR, "main.go"));
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const cache = toolCacheDir();
  const binary = join(cache, `helm-render-${hash}`);
  if (existsSync(binary)) return binary;
  if (!onPath("go")) {
    throw new ChartRenderError(
      "helm-render needs Go to build: apt-get install golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev (or put helm on PATH)",
    );
  }
  await mkdir(cache, { recursive: true });
  const partial = `${binary}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
  const env = {
    ...process.env,
    GOPATH: process.env.PHOENIX_GOPATH ?? "/usr/share/gocode",
    GO111MODULE: "off",
    GOFLAGS: "",
    GOCACHE: join(cache, "go-build"),
  };
  const result = await run("go", ["build", "-o", partial, "."], env, HELM_RENDER_DIR);
  if (result.code !== 0) {
    await rm(partial, { force: true });
    throw new ChartRenderError(`building k8s/tools/helm-render failed:\n${result.stderr.trim()}`);
  }
  // Atomic: a concurrent build of the same source renames an identical binary over it.
  await rename(partial, binary);
  return binary;
}

// ---------------------------------------------------------------------------------------------
// Command line: `npm run chart:render -- --release alpha -f values.yaml --set domain=x`

const USAGE = `usage: chart:render [--chart DIR] --release NAME [-n NAMESPACE] [-f VALUES]... [--set K=V]...
                    [--set-string K=V]... [--is-upgrade] [--revision N] [--kube-version V]
                    [--api-versions G/V]... [--engine auto|helm|go] [--notes]
Prints the rendered manifests like \`helm template\` (default chart: k8s/charts/phoenix).`;

/** The `chart:render` command; returns the exit code. */
export async function renderCli(
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const options: RenderChartOptions & {
    valuesFiles: string[];
    set: string[];
    setString: Record<string, string>;
  } = {
    chartDir: resolve(HELM_RENDER_DIR, "../../charts/phoenix"),
    releaseName: "",
    valuesFiles: [],
    set: [],
    setString: {},
  };
  const apiVersions: string[] = [];
  let notes = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = (): string => {
      const value = argv[++i];
      if (value === undefined) throw new ChartRenderError(`${arg} needs a value\n${USAGE}`);
      return value;
    };
    switch (arg) {
      case "--chart":
        options.chartDir = resolve(next());
        break;
      case "--release":
        options.releaseName = next();
        break;
      case "-n":
      case "--namespace":
        options.namespace = next();
        break;
      case "-f":
      case "--values":
        options.valuesFiles.push(resolve(next()));
        break;
      case "--set":
        options.set.push(next());
        break;
      case "--set-string": {
        const [key, ...rest] = next().split("=");
        options.setString[key as string] = rest.join("=");
        break;
      }
      case "--is-upgrade":
        options.isUpgrade = true;
        break;
      case "--revision":
        options.revision = Number(next());
        break;
      case "--kube-version":
        options.kubeVersion = next();
        break;
      case "--api-versions":
        apiVersions.push(next());
        break;
      case "--engine":
        options.engine = next() as RenderChartOptions["engine"];
        break;
      case "--notes":
        notes = true;
        break;
      case "-h":
      case "--help":
        out.write(`${USAGE}\n`);
        return 0;
      default:
        if (!options.releaseName && !arg.startsWith("-")) {
          options.releaseName = arg;
          break;
        }
        process.stderr.write(`unknown argument ${arg}\n${USAGE}\n`);
        return 2;
    }
  }
  if (!options.releaseName) {
    process.stderr.write(`a release name is required\n${USAGE}\n`);
    return 2;
  }
  options.apiVersions = apiVersions;
  try {
    const rendered = await renderChartRelease(options);
    out.write(rendered.manifest);
    if (notes && rendered.notes) process.stderr.write(`\nNOTES:\n${rendered.notes}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
