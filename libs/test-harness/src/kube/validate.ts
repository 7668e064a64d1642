// Validates rendered objects against the Kubernetes API schemas (kubernetes-models: the OpenAPI
// schemas of the API server, compiled to validators), plus the name rules the API server enforces
// outside those schemas. CRDs: ServiceMonitor, PrometheusRule (@kubernetes-models/prometheus-operator) and
// cert-manager's Certificate (@kubernetes-models/cert-manager).
//
// Not caught (the OpenAPI schemas allow it, only a server's strict field validation refuses it):
// unknown fields. lint.ts checks the fields that matter (probes, resources, securityContext) by
// requiring them, which catches a misspelt one.
import { isRecord, type KubeObject, objectId } from "./objects.js";

/** A problem with one object: `Deployment/alpha-phoenix-auth` at `spec.replicas`. */
export interface ObjectProblem {
  object: string;
  path: string;
  message: string;
}

/** Packages with the models of API groups beyond Kubernetes' own. */
const CRD_PACKAGES: Record<string, string> = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};

interface ModelValidationError extends Error {
  errors?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
}
type ModelClass = new (data: unknown) => { validate(): void };

const models = new Map<string, Promise<ModelClass | undefined>>();

function modelModule(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf("/");
  if (slash < 0) return `kubernetes-models/${apiVersion}/${kind}`;
  const group = apiVersion.slice(0, slash);
  return `${CRD_PACKAGES[group] ?? "kubernetes-models"}/${apiVersion}/${kind}`;
}

function loadModel(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const key = `${apiVersion}/${kind}`;
  let model = models.get(key);
  if (!model) {
    model = (async () => {
      if (!/^[A-Za-z0-9.-]+(\/[A-Za-z0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
        return undefined;
      }
      try {
        const module = (await import(modelModule(apiVersion, kind))) as Record<string, unknown>;
        const candidate = module[kind];
        return typeof candidate === "function" ? (candidate as ModelClass) : undefined;
      } catch {
        return undefined;
      }
    })();
    models.set(key, model);
  }
  return model;
}

function dotted(instancePath: string): string {
  const parts = instancePath.split("/").slice(1);
  return (
    parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : `${i === 0 ? "" : "."}${p}`)).join("") || "(object)"
  );
}

/**
 * Validates every object against the schema of its apiVersion and kind; an apiVersion/kind
 * without a schema (a typo, a removed API) is a problem too.
 */
export async function validateObjects(objects: readonly KubeObject[]): Promise<ObjectProblem[]> {
  const problems: ObjectProblem[] = [];
  for (const object of objects) {
    const id = objectId(object);
    const Model = await loadModel(object.apiVersion, object.kind);
    if (!Model) {
      problems.push({
        object: id,
        path: "apiVersion",
        message: `no schema for ${object.apiVersion} ${object.kind} (unknown or removed API)`,
      });
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      const detail = (error as ModelValidationError).errors;
      if (!detail?.length) {
        problems.push({ object: id, path: "(object)", message: (error as Error).message });
        continue;
      }
      for (const e of detail) {
        const extra =
          e.params && "allowedValues" in e.params ? `: ${JSON.stringify(e.params.allowedValues)}` : "";
        problems.push({
          object: id,
          path: dotted(e.instancePath ?? ""),
          message: `${e.message ?? "invalid"}${extra}`,
        });
      }
    }
    problems.push(...nameProblems(object));
  }
  return problems;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Kinds whose names become DNS labels (Services) or pod hostnames. */
const LABEL_NAMED = new Set(["Service", "Namespace"]);

/** The API server's name and label rules (apimachinery validation), which the OpenAPI schemas omit. */
export function nameProblems(object: KubeObject): ObjectProblem[] {
  const problems: ObjectProblem[] = [];
  const id = objectId(object);
  const add = (path: string, message: string) => problems.push({ object: id, path, message });
  const name = object.metadata.name;
  if (object.kind === "Service") {
    if (!DNS_1035_LABEL.test(name) || name.length > 63) {
      add("metadata.name", `"${name}" is not a DNS-1035 label (a-z first, a-z0-9- after, at most 63)`);
    }
  } else if (LABEL_NAMED.has(object.kind) || object.kind === "StatefulSet") {
    if (!DNS_LABEL.test(name) || name.length > 63)
      add("metadata.name", `"${name}" is not a DNS label (at most 63)`);
  } else if (!DNS_SUBDOMAIN.test(name) || name.length > 253) {
    add("metadata.name", `"${name}" is not a DNS subdomain name`);
  }
  const checkLabels = (labels: unknown, path: string) => {
    if (!isRecord(labels)) return;
    for (const [key, value] of Object.entries(labels)) {
      const [prefix, keyName] = key.includes("/") ? (key.split("/", 2) as [string, string]) : ["", key];
      if ((prefix && !DNS_SUBDOMAIN.test(prefix)) || !LABEL_NAME.test(keyName) || keyName.length > 63) {
        add(`${path}.${key}`, "invalid label key");
      }
      if (typeof value !== "string" || value.length > 63 || !LABEL_VALUE.test(value)) {
        add(`${path}.${key}`, `invalid label value ${JSON.stringify(value)} (at most 63 of A-Za-z0-9-_.)`);
      }
    }
  };
  checkLabels(object.metadata.labels, "metadata.labels");
  const spec = isRecord(object.spec) ? object.spec : {};
  const template = isRecord(spec.template) ? spec.template : undefined;
  if (template && isRecord(template.metadata))
    checkLabels(template.metadata.labels, "spec.template.metadata.labels");
  const podSpec =
    object.kind === "Pod" ? spec : template && isRecord(template.spec) ? template.spec : undefined;
  if (podSpec) {
    const base = object.kind === "Pod" ? "spec" : "spec.template.spec";
    for (const field of ["initContainers", "containers"]) {
      const list = podSpec[field];
      if (!Array.isArray(list)) continue;
      list.forEach((c: unknown, i: number) => {
        if (!isRecord(c)) return;
        if (typeof c.name !== "string" || !DNS_LABEL.test(c.name))
          add(`${base}.${field}[${i}].name`, "not a DNS label");
        const ports = Array.isArray(c.ports) ? c.ports : [];
        ports.forEach((p: unknown, j: number) => {
          if (isRecord(p) && typeof p.name === "string" && (p.name.length > 15 || !PORT_NAME.test(p.name))) {
            add(
              `${base}.${field}[${i}].ports[${j}].name`,
              `"${p.name}" is not an IANA service name (at most 15)`,
            );
          }
        });
      });
    }
  }
  if (object.kind === "Service" && Array.isArray(spec.ports)) {
    spec.ports.forEach((p: unknown, j: number) => {
      if (isRecord(p) && typeof p.name === "string" && (p.name.length > 63 || !DNS_LABEL.test(p.name))) {
        add(`spec.ports[${j}].name`, `"${p.name}" is not a DNS label`);
      }
    });
  }
  return problems;
}
