// Checks of rendered objects that schemas cannot make: what a pod needs to run safely (probes,
// resources, a locked-down securityContext, a pinned image), that every reference resolves (Secrets,
// ConfigMaps, Service selectors and ports, PDB/HPA targets, what a pre-install hook reads), that no
// secret sits in a ConfigMap, the recommended labels, and NetworkPolicies around every pod.
import {
  containersOf,
  hookOf,
  isRecord,
  type KubeObject,
  objectId,
  type PodTemplate,
  podTemplateOf,
  selectorMatches,
} from "./objects.js";
import type { ObjectProblem } from "./validate.js";

export type LintProblem = ObjectProblem;

export interface LintOptions {
  /** Secrets the operator provides (existingSecret values, registry credentials): not in the render. */
  externalSecrets?: readonly string[];
  /** ConfigMaps the operator provides (e.g. a CA bundle). */
  externalConfigMaps?: readonly string[];
  /**
   * Require a NetworkPolicy (Ingress and Egress) around every pod. Default: when the render has
   * any NetworkPolicy (the chart's networkPolicy.enabled).
   */
  requireNetworkPolicies?: boolean;
}

/** Labels every object carries (Kubernetes' recommended labels, plus Helm's chart label). */
export const RECOMMENDED_LABELS = [
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/version",
  "app.kubernetes.io/part-of",
  "app.kubernetes.io/managed-by",
  "helm.sh/chart",
] as const;

/** Kinds that belong to one component and carry `app.kubernetes.io/component`. */
const COMPONENT_KINDS = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "Job",
  "CronJob",
  "Pod",
  "Service",
  "PodDisruptionBudget",
  "HorizontalPodAutoscaler",
  "NetworkPolicy",
  "ServiceMonitor",
  "PrometheusRule",
  "Ingress",
  "Certificate",
]);

/** ConfigMap keys that name a secret: such a value belongs in a Secret. */
export const SECRET_KEY_PATTERN = /KEY|PASSWORD|TOKEN|SECRET|DATABASE_URL/i;
/** …unless the key names a file (`FEDERATION_TLS_KEY_FILE`): a path to a mounted Secret, not the secret. */
const FILE_KEY_PATTERN = /_(FILE|PATH|DIR)$/i;

/** Workload kinds whose containers serve and so need readiness and liveness probes. */
const SERVING_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

const strings = (value: unknown): Record<string, string> =>
  isRecord(value)
    ? (Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === "string")) as Record<
        string,
        string
      >)
    : {};

/** Lints rendered objects; an empty list means nothing to fix. */
export function lintObjects(objects: readonly KubeObject[], options: LintOptions = {}): LintProblem[] {
  const problems: LintProblem[] = [];
  const add = (object: KubeObject, path: string, message: string) =>
    problems.push({ object: objectId(object), path, message });
  const context = new RenderIndex(objects, options);
  for (const object of objects) {
    lintLabels(object, add);
    const template = podTemplateOf(object);
    if (template) lintPod(object, template, context, add);
    switch (object.kind) {
      case "ConfigMap":
        lintConfigMap(object, add);
        break;
      case "Service":
        lintService(object, context, add);
        break;
      case "HorizontalPodAutoscaler":
        lintAutoscaler(object, context, add);
        break;
      case "PodDisruptionBudget":
        lintDisruptionBudget(object, context, add);
        break;
    }
  }
  if (options.requireNetworkPolicies ?? objects.some((o) => o.kind === "NetworkPolicy")) {
    for (const object of objects) {
      const template = podTemplateOf(object);
      if (template) lintNetworkPolicyCoverage(object, template, context, add);
    }
  }
  return problems;
}

type Add = (object: KubeObject, path: string, message: string) => void;

/** What the render holds, by name. */
class RenderIndex {
  readonly secrets = new Map<string, KubeObject | "external">();
  readonly configMaps = new Map<string, KubeObject | "external">();
  readonly workloads: { object: KubeObject; template: PodTemplate }[] = [];
  readonly networkPolicies: KubeObject[];

  constructor(
    readonly objects: readonly KubeObject[],
    options: LintOptions,
  ) {
    for (const name of options.externalSecrets ?? []) this.secrets.set(name, "external");
    for (const name of options.externalConfigMaps ?? []) this.configMaps.set(name, "external");
    for (const object of objects) {
      if (object.kind === "Secret") this.secrets.set(object.metadata.name, object);
      if (object.kind === "ConfigMap") this.configMaps.set(object.metadata.name, object);
      // cert-manager writes the Certificate's Secret (tls.crt, tls.key, ca.crt).
      if (
        object.kind === "Certificate" &&
        isRecord(object.spec) &&
        typeof object.spec.secretName === "string"
      ) {
        this.secrets.set(object.spec.secretName, {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: object.spec.secretName },
          data: { "tls.crt": "", "tls.key": "", "ca.crt": "" },
        });
      }
      const template = podTemplateOf(object);
      if (template) this.workloads.push({ object, template });
    }
    this.networkPolicies = objects.filter((o) => o.kind === "NetworkPolicy");
  }
}

function lintLabels(object: KubeObject, add: Add): void {
  const labels = object.metadata.labels ?? {};
  for (const label of RECOMMENDED_LABELS) {
    if (!labels[label]) add(object, `metadata.labels.${label}`, "recommended label missing");
  }
  if (COMPONENT_KINDS.has(object.kind) && !labels["app.kubernetes.io/component"]) {
    add(object, "metadata.labels.app.kubernetes.io/component", "component label missing");
  }
  const template = podTemplateOf(object);
  if (template && object.kind !== "Pod") {
    const podLabels = template.metadata.labels ?? {};
    for (const label of [
      "app.kubernetes.io/name",
      "app.kubernetes.io/instance",
      "app.kubernetes.io/component",
    ]) {
      if (!podLabels[label]) add(object, `spec.template.metadata.labels.${label}`, "pod label missing");
    }
  }
}

/** `repo:tag`, `repo@sha256:…`, `registry:5000/repo:tag` → the tag (undefined without one) and digest. */
export function imageReference(image: string): { tag: string | undefined; digest: string | undefined } {
  const [name, digest] = image.split("@", 2) as [string, string | undefined];
  const colon = name.lastIndexOf(":");
  const tag = colon > name.lastIndexOf("/") ? name.slice(colon + 1) : undefined;
  return { tag, digest };
}

function lintPod(object: KubeObject, template: PodTemplate, context: RenderIndex, add: Add): void {
  const spec = template.spec;
  const hook = hookOf(object);
  const podSecurity = isRecord(spec.securityContext) ? spec.securityContext : {};
  const needsProbes = SERVING_KINDS.has(object.kind) || (object.kind === "Pod" && !hook);
  for (const entry of containersOf(template)) {
    const { container, path } = entry;
    // Probes: serving containers and sidecars (init containers that keep running).
    const sidecar = entry.init && container.restartPolicy === "Always";
    if ((needsProbes && !entry.init) || sidecar) {
      for (const probe of ["readinessProbe", "livenessProbe"]) {
        if (!isRecord(container[probe])) add(object, `${path}.${probe}`, "missing");
      }
      lintProbePorts(object, entry.path, container, add);
    }
    // Resources.
    const resources = isRecord(container.resources) ? container.resources : {};
    const requests = isRecord(resources.requests) ? resources.requests : {};
    const limits = isRecord(resources.limits) ? resources.limits : {};
    for (const [where, value] of [
      ["resources.requests.cpu", requests.cpu],
      ["resources.requests.memory", requests.memory],
      ["resources.limits.memory", limits.memory],
    ] as const) {
      if (value === undefined || value === null || value === "") add(object, `${path}.${where}`, "missing");
    }
    // securityContext: container level, or pod level where Kubernetes inherits it.
    const security = isRecord(container.securityContext) ? container.securityContext : {};
    const effective = (field: string) => security[field] ?? podSecurity[field];
    if (effective("runAsNonRoot") !== true)
      add(object, `${path}.securityContext.runAsNonRoot`, "must be true");
    if (effective("runAsUser") === 0)
      add(object, `${path}.securityContext.runAsUser`, "must not be 0 (root)");
    if (security.readOnlyRootFilesystem !== true) {
      add(object, `${path}.securityContext.readOnlyRootFilesystem`, "must be true");
    }
    if (security.allowPrivilegeEscalation !== false) {
      add(object, `${path}.securityContext.allowPrivilegeEscalation`, "must be false");
    }
    if (security.privileged === true) add(object, `${path}.securityContext.privileged`, "must not be true");
    const capabilities = isRecord(security.capabilities) ? security.capabilities : {};
    const drop = Array.isArray(capabilities.drop) ? capabilities.drop : [];
    if (!drop.includes("ALL")) add(object, `${path}.securityContext.capabilities.drop`, "must include ALL");
    if (Array.isArray(capabilities.add) && capabilities.add.length > 0) {
      add(object, `${path}.securityContext.capabilities.add`, "must be empty");
    }
    const seccomp = effective("seccompProfile");
    const seccompType = isRecord(seccomp) ? seccomp.type : undefined;
    if (seccompType !== "RuntimeDefault" && seccompType !== "Localhost") {
      add(
        object,
        `${path}.securityContext.seccompProfile.type`,
        "must be RuntimeDefault (pod or container level)",
      );
    }
    // Image: pinned, never latest.
    if (typeof container.image !== "string" || container.image === "") {
      add(object, `${path}.image`, "missing");
    } else {
      const { tag, digest } = imageReference(container.image);
      if (!digest && (tag === undefined || tag === ""))
        add(object, `${path}.image`, `"${container.image}" has no tag`);
      if (tag === "latest") add(object, `${path}.image`, `"${container.image}" uses the tag latest`);
    }
    lintEnvReferences(object, path, container, context, add);
  }
  lintVolumes(object, template, context, add);
  for (const [index, secret] of (Array.isArray(spec.imagePullSecrets)
    ? spec.imagePullSecrets
    : []
  ).entries()) {
    const name = isRecord(secret) ? secret.name : undefined;
    if (typeof name === "string" && !context.secrets.has(name)) {
      add(
        object,
        `${template.path}.imagePullSecrets[${index}]`,
        `Secret ${name} is neither rendered nor declared external`,
      );
    }
  }
  lintHookInputs(object, template, context, add);
}

/** A probe's named port must be a port of the container. */
function lintProbePorts(
  object: KubeObject,
  path: string,
  container: Record<string, unknown>,
  add: Add,
): void {
  const names = new Set(
    (Array.isArray(container.ports) ? container.ports : [])
      .map((p) => (isRecord(p) ? p.name : undefined))
      .filter((n): n is string => typeof n === "string"),
  );
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const p = container[probe];
    if (!isRecord(p)) continue;
    for (const handler of ["httpGet", "tcpSocket"]) {
      const h = p[handler];
      if (isRecord(h) && typeof h.port === "string" && !names.has(h.port)) {
        add(
          object,
          `${path}.${probe}.${handler}.port`,
          `named port ${h.port} is not a port of the container`,
        );
      }
    }
  }
}

interface Reference {
  kind: "Secret" | "ConfigMap";
  name: string;
  key?: string;
  optional: boolean;
  path: string;
}

function containerReferences(path: string, container: Record<string, unknown>): Reference[] {
  const refs: Reference[] = [];
  const env = Array.isArray(container.env) ? container.env : [];
  env.forEach((entry, i) => {
    const from = isRecord(entry) && isRecord(entry.valueFrom) ? entry.valueFrom : undefined;
    for (const [field, kind] of [
      ["secretKeyRef", "Secret"],
      ["configMapKeyRef", "ConfigMap"],
    ] as const) {
      const ref = from && isRecord(from[field]) ? from[field] : undefined;
      if (ref && typeof ref.name === "string") {
        refs.push({
          kind,
          name: ref.name,
          ...(typeof ref.key === "string" ? { key: ref.key } : {}),
          optional: ref.optional === true,
          path: `${path}.env[${i}].valueFrom.${field}`,
        });
      }
    }
  });
  const envFrom = Array.isArray(container.envFrom) ? container.envFrom : [];
  envFrom.forEach((entry, i) => {
    for (const [field, kind] of [
      ["secretRef", "Secret"],
      ["configMapRef", "ConfigMap"],
    ] as const) {
      const ref = isRecord(entry) && isRecord(entry[field]) ? entry[field] : undefined;
      if (ref && typeof ref.name === "string") {
        refs.push({
          kind,
          name: ref.name,
          optional: ref.optional === true,
          path: `${path}.envFrom[${i}].${field}`,
        });
      }
    }
  });
  return refs;
}

function volumeReferences(template: PodTemplate): Reference[] {
  const refs: Reference[] = [];
  const volumes = Array.isArray(template.spec.volumes) ? template.spec.volumes : [];
  volumes.forEach((volume, i) => {
    if (!isRecord(volume)) return;
    const path = `${template.path}.volumes[${i}]`;
    const sources: [Record<string, unknown> | undefined, "Secret" | "ConfigMap", string][] = [
      [isRecord(volume.secret) ? volume.secret : undefined, "Secret", "secretName"],
      [isRecord(volume.configMap) ? volume.configMap : undefined, "ConfigMap", "name"],
    ];
    const projected =
      isRecord(volume.projected) && Array.isArray(volume.projected.sources) ? volume.projected.sources : [];
    for (const source of projected) {
      if (!isRecord(source)) continue;
      if (isRecord(source.secret)) sources.push([source.secret, "Secret", "name"]);
      if (isRecord(source.configMap)) sources.push([source.configMap, "ConfigMap", "name"]);
    }
    for (const [source, kind, nameField] of sources) {
      if (!source || typeof source[nameField] !== "string") continue;
      const name = source[nameField] as string;
      const items = Array.isArray(source.items) ? source.items : [];
      const optional = source.optional === true;
      if (items.length === 0) refs.push({ kind, name, optional, path });
      for (const item of items) {
        if (isRecord(item) && typeof item.key === "string")
          refs.push({ kind, name, key: item.key, optional, path });
      }
    }
  });
  return refs;
}

function resolveReference(ref: Reference, context: RenderIndex): string | undefined {
  const table = ref.kind === "Secret" ? context.secrets : context.configMaps;
  const target = table.get(ref.name);
  if (target === undefined) {
    return ref.optional ? undefined : `${ref.kind} ${ref.name} is neither rendered nor declared external`;
  }
  if (target === "external" || ref.key === undefined || ref.optional) return undefined;
  const keys = new Set([
    ...Object.keys(isRecord(target.data) ? target.data : {}),
    ...Object.keys(isRecord(target.stringData) ? target.stringData : {}),
    ...Object.keys(isRecord(target.binaryData) ? target.binaryData : {}),
  ]);
  return keys.has(ref.key) ? undefined : `${ref.kind} ${ref.name} has no key ${ref.key}`;
}

function lintEnvReferences(
  object: KubeObject,
  path: string,
  container: Record<string, unknown>,
  context: RenderIndex,
  add: Add,
): void {
  for (const ref of containerReferences(path, container)) {
    const problem = resolveReference(ref, context);
    if (problem) add(object, ref.path, problem);
  }
}

function lintVolumes(object: KubeObject, template: PodTemplate, context: RenderIndex, add: Add): void {
  for (const ref of volumeReferences(template)) {
    const problem = resolveReference(ref, context);
    if (problem) add(object, ref.path, problem);
  }
}

/**
 * A pre-install hook runs before the release's objects exist: every Secret, ConfigMap and
 * ServiceAccount it uses must be external or itself a pre-install hook of lower weight.
 */
function lintHookInputs(object: KubeObject, template: PodTemplate, context: RenderIndex, add: Add): void {
  const hook = hookOf(object);
  if (!hook?.events.includes("pre-install")) return;
  const refs = [
    ...containersOf(template).flatMap((entry) => containerReferences(entry.path, entry.container)),
    ...volumeReferences(template),
  ];
  for (const ref of refs) {
    const table = ref.kind === "Secret" ? context.secrets : context.configMaps;
    const target = table.get(ref.name);
    if (target === undefined || target === "external") continue;
    const targetHook = hookOf(target);
    if (!targetHook?.events.includes("pre-install") || targetHook.weight >= hook.weight) {
      add(
        object,
        ref.path,
        `pre-install hook reads ${ref.kind} ${ref.name}, which does not exist yet then (make it a lower-weight pre-install hook or external)`,
      );
    }
  }
  const account = template.spec.serviceAccountName;
  if (typeof account === "string") {
    const sa = context.objects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === account);
    if (sa && !hookOf(sa)?.events.includes("pre-install")) {
      add(
        object,
        `${template.path}.serviceAccountName`,
        `pre-install hook runs as ServiceAccount ${account}, which does not exist yet then`,
      );
    }
  }
}

function lintConfigMap(object: KubeObject, add: Add): void {
  for (const field of ["data", "binaryData"]) {
    const data = object[field];
    if (!isRecord(data)) continue;
    for (const [key, value] of Object.entries(data)) {
      if (SECRET_KEY_PATTERN.test(key) && !FILE_KEY_PATTERN.test(key))
        add(object, `${field}.${key}`, "looks like a secret: belongs in a Secret");
      if (typeof value === "string" && /:\/\/[^/\s:@]+:[^/\s@]+@/.test(value)) {
        add(object, `${field}.${key}`, "holds a URL with a password: belongs in a Secret");
      }
    }
  }
}

function selectedWorkloads(selector: Record<string, string>, context: RenderIndex, namespace?: string) {
  return context.workloads.filter(
    (w) =>
      (namespace === undefined || (w.object.metadata.namespace ?? namespace) === namespace) &&
      selectorMatches(selector, w.template.metadata.labels ?? {}),
  );
}

function lintService(object: KubeObject, context: RenderIndex, add: Add): void {
  const spec = isRecord(object.spec) ? object.spec : {};
  if (spec.type === "ExternalName") return;
  const selector = strings(spec.selector);
  if (Object.keys(selector).length === 0) {
    add(object, "spec.selector", "missing: the Service selects no pods");
    return;
  }
  const selected = selectedWorkloads(selector, context).filter((w) => !hookOf(w.object));
  if (selected.length === 0) {
    add(object, "spec.selector", `selects no pod template of the render (${JSON.stringify(selector)})`);
    return;
  }
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  ports.forEach((port, i) => {
    if (!isRecord(port)) return;
    const target = port.targetPort ?? port.port;
    if (typeof target !== "string") return;
    const served = selected.some((w) =>
      containersOf(w.template).some(
        (c) =>
          Array.isArray(c.container.ports) && c.container.ports.some((p) => isRecord(p) && p.name === target),
      ),
    );
    if (!served) add(object, `spec.ports[${i}].targetPort`, `no selected pod has a port named ${target}`);
  });
}

function lintAutoscaler(object: KubeObject, context: RenderIndex, add: Add): void {
  const spec = isRecord(object.spec) ? object.spec : {};
  const ref = isRecord(spec.scaleTargetRef) ? spec.scaleTargetRef : {};
  const target = context.objects.find((o) => o.kind === ref.kind && o.metadata.name === ref.name);
  if (!target) {
    add(object, "spec.scaleTargetRef", `${String(ref.kind)}/${String(ref.name)} is not in the render`);
    return;
  }
  if (isRecord(target.spec) && target.spec.replicas !== undefined) {
    add(
      object,
      "spec.scaleTargetRef",
      `${objectId(target)} sets spec.replicas: every upgrade would reset the autoscaler's count`,
    );
  }
}

function lintDisruptionBudget(object: KubeObject, context: RenderIndex, add: Add): void {
  const spec = isRecord(object.spec) ? object.spec : {};
  const selector = strings(isRecord(spec.selector) ? spec.selector.matchLabels : undefined);
  const targets = selectedWorkloads(selector, context).filter((w) =>
    ["Deployment", "StatefulSet"].includes(w.object.kind),
  );
  if (targets.length === 0)
    add(object, "spec.selector", "selects no Deployment or StatefulSet of the render");
}

function lintNetworkPolicyCoverage(
  object: KubeObject,
  template: PodTemplate,
  context: RenderIndex,
  add: Add,
): void {
  const labels = template.metadata.labels ?? {};
  const covering = context.networkPolicies.filter((np) => {
    const spec = isRecord(np.spec) ? np.spec : {};
    const selector = strings(isRecord(spec.podSelector) ? spec.podSelector.matchLabels : undefined);
    return Object.keys(selector).length > 0 && selectorMatches(selector, labels);
  });
  const types = new Set(
    covering.flatMap((np) =>
      isRecord(np.spec) && Array.isArray(np.spec.policyTypes) ? np.spec.policyTypes : [],
    ),
  );
  for (const type of ["Ingress", "Egress"]) {
    if (!types.has(type)) add(object, `${template.path}`, `no NetworkPolicy restricts ${type} of these pods`);
  }
}
