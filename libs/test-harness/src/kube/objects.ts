// Rendered Kubernetes objects: the shared shape, YAML parsing of manifest streams, where an object
// came from (its chart template), its Helm hook, and the pod templates inside workloads. Used by
// render.ts, validate.ts, lint.ts and the podman stand-in.
import { parseAllDocuments } from "yaml";

/** A rendered Kubernetes object (only the envelope is typed; the rest is read where needed). */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** A manifest YAML stream could not be read as Kubernetes objects. */
export class ManifestParseError extends Error {
  override readonly name = "ManifestParseError";
}

/**
 * Parses a multi-document YAML stream (`helm template` output, a manifest file) into objects.
 * YAML 1.1 like Kubernetes' own parser (`on`/`yes` are booleans, `0440` is octal); documents that
 * are empty or only comments are dropped; a `# Source: <template>` comment is remembered
 * ({@link templateOf}).
 */
export function parseManifests(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text, { version: "1.1" })) {
    if (doc.errors.length > 0) {
      throw new ManifestParseError(`invalid YAML: ${doc.errors[0]?.message ?? "parse error"}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    // The comment before a document's first node belongs to that node in the yaml package.
    const comment = `${doc.commentBefore ?? ""}\n${(doc.contents as { commentBefore?: string } | null)?.commentBefore ?? ""}`;
    const source = /^\s*Source: (\S+)/m.exec(comment)?.[1];
    objects.push(asKubeObject(value, source ?? "manifest"));
    if (source) setTemplate(objects[objects.length - 1] as KubeObject, source);
  }
  return objects;
}

/** Checks that `value` has the envelope of a Kubernetes object. */
export function asKubeObject(value: unknown, where: string): KubeObject {
  if (!isRecord(value)) throw new ManifestParseError(`${where}: a document is not a mapping`);
  const metadata = value.metadata;
  if (typeof value.apiVersion !== "string" || typeof value.kind !== "string") {
    throw new ManifestParseError(`${where}: a document has no apiVersion or kind`);
  }
  if (!isRecord(metadata) || typeof metadata.name !== "string" || metadata.name === "") {
    throw new ManifestParseError(`${where}: ${value.kind} has no metadata.name`);
  }
  return value as KubeObject;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `Kind/name`, how problems name an object. */
export function objectId(object: KubeObject): string {
  return `${object.kind}/${object.metadata.name}`;
}

const templates = new WeakMap<KubeObject, string>();

/** Records the chart template an object was rendered from. */
export function setTemplate(object: KubeObject, template: string): void {
  templates.set(object, template);
}

/** The chart template an object was rendered from (`phoenix/templates/deployments.yaml`), if known. */
export function templateOf(object: KubeObject): string | undefined {
  return templates.get(object);
}

/** A Helm hook as its annotations declare it. */
export interface HookInfo {
  /** `pre-install`, `post-upgrade`, `test`, … */
  events: string[];
  weight: number;
  deletePolicies: string[];
}

/** The object's Helm hook, or undefined for an ordinary release object. */
export function hookOf(object: KubeObject): HookInfo | undefined {
  const annotations = object.metadata.annotations ?? {};
  const events = annotations["helm.sh/hook"];
  if (events === undefined) return undefined;
  const list = (value: string | undefined) =>
    (value ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  return {
    events: list(events),
    weight: Number(annotations["helm.sh/hook-weight"] ?? "0") || 0,
    deletePolicies: list(annotations["helm.sh/hook-delete-policy"]),
  };
}

/** The pod template metadata and spec inside a workload (or the Pod itself). */
export interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
  /** JSON-path-like prefix of the spec inside the object, for problem reports. */
  path: string;
}

/** The pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod. */
export function podTemplateOf(object: KubeObject): PodTemplate | undefined {
  const spec = isRecord(object.spec) ? object.spec : undefined;
  if (!spec) return undefined;
  switch (object.kind) {
    case "Pod":
      return { metadata: object.metadata, spec, path: "spec" };
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job": {
      const template = isRecord(spec.template) ? spec.template : undefined;
      if (!template || !isRecord(template.spec)) return undefined;
      return {
        metadata: isRecord(template.metadata) ? (template.metadata as PodTemplate["metadata"]) : {},
        spec: template.spec,
        path: "spec.template.spec",
      };
    }
    case "CronJob": {
      const jobTemplate = isRecord(spec.jobTemplate) ? spec.jobTemplate : undefined;
      const jobSpec = jobTemplate && isRecord(jobTemplate.spec) ? jobTemplate.spec : undefined;
      const template = jobSpec && isRecord(jobSpec.template) ? jobSpec.template : undefined;
      if (!template || !isRecord(template.spec)) return undefined;
      return {
        metadata: isRecord(template.metadata) ? (template.metadata as PodTemplate["metadata"]) : {},
        spec: template.spec,
        path: "spec.jobTemplate.spec.template.spec",
      };
    }
    default:
      return undefined;
  }
}

/** A container of a pod spec with where it sits (`containers[0]`, `initContainers[1]`). */
export interface ContainerEntry {
  container: Record<string, unknown>;
  name: string;
  path: string;
  init: boolean;
}

/** Every container and init container of a pod spec. */
export function containersOf(template: PodTemplate): ContainerEntry[] {
  const entries: ContainerEntry[] = [];
  for (const field of ["initContainers", "containers"] as const) {
    const list = template.spec[field];
    if (!Array.isArray(list)) continue;
    list.forEach((container, index) => {
      if (!isRecord(container)) return;
      entries.push({
        container,
        name: typeof container.name === "string" ? container.name : `#${index}`,
        path: `${template.path}.${field}[${index}]`,
        init: field === "initContainers",
      });
    });
  }
  return entries;
}

/** The Kubernetes label selector semantics of `matchLabels` (matchExpressions are not read). */
export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}
