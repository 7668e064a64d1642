// A Kubernetes namespace reproduced on podman, for the helm-based tests: rendered chart objects are
// applied as the API server and kubelet would, small enough to read in one sitting.
//
// Reproduced: ConfigMaps and Secrets (data and stringData) as env, envFrom and volume files;
// Deployments (replicas, rolling update one pod at a time: surge one, wait until ready, retire one)
// and StatefulSets (ordered pods, volumeClaimTemplates as named volumes that outlive the pods);
// Helm hooks (pre/post-install, pre/post-upgrade, test) in weight order with their delete policies;
// Jobs (backoffLimit, activeDeadlineSeconds); pod and container securityContext (runAsUser/Group,
// runAsNonRoot refused for a root image, fsGroup, readOnlyRootFilesystem with only declared
// volumes writable, capabilities, allowPrivilegeEscalation), command/args with `$(VAR)`, memory and
// CPU limits; readiness, liveness and startup probes (gRPC, HTTP, TCP from inside the network;
// exec inside the container); Services as a proxy container per Service that owns the Service's
// DNS names (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) and forwards each port to
// the *ready* pods it selects, so a pod serves only after its readiness probe passes, and a
// LoadBalancer can be published on a second network under public names. Deviations: containers
// find Services through `/etc/hosts` entries rather than DNS (podman's DNS stalls while containers
// come and go), and the StatefulSets of a release start before its Deployments.
//
// Not reproduced (checked statically by the chart lint instead): NetworkPolicy enforcement,
// HorizontalPodAutoscaler, PodDisruptionBudget, Ingress, ServiceMonitor, PrometheusRule, cert-manager,
// ServiceAccount tokens, resource requests (scheduling), topology spread, multi-container pods.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, chown, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hookOf, type KubeObject } from "./objects.js";
import { podman } from "./podman.js";

// ---------------------------------------------------------------------------------------------
// Object shapes (only the fields this stand-in reads)

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}
interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { port: number | string; path?: string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}
interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  fsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: {
    prefix?: string;
    configMapRef?: { name: string; optional?: boolean };
    secretRef?: { name: string; optional?: boolean };
  }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: SecurityContext;
  resources?: { limits?: { memory?: string; cpu?: string } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
interface Volume {
  name: string;
  emptyDir?: { medium?: string };
  configMap?: {
    name: string;
    items?: { key: string; path: string }[];
    defaultMode?: number;
    optional?: boolean;
  };
  secret?: {
    secretName: string;
    items?: { key: string; path: string }[];
    defaultMode?: number;
    optional?: boolean;
  };
  persistentVolumeClaim?: { claimName: string };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext;
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
}
interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}
interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
}

/** What the stand-in does not apply, by kind: reported, never silently dropped. */
export const NOT_REPRODUCED = new Set([
  "NetworkPolicy",
  "HorizontalPodAutoscaler",
  "PodDisruptionBudget",
  "Ingress",
  "ServiceMonitor",
  "PrometheusRule",
  "Certificate",
  "ServiceAccount",
]);

/** A rendered object could not be run the way Kubernetes would run it (or its pod failed). */
export class KubeStandInError extends Error {
  override readonly name = "KubeStandInError";
}

// ---------------------------------------------------------------------------------------------
// Hooks

type HookEvent = "pre-install" | "post-install" | "pre-upgrade" | "post-upgrade" | "test";

/** A hook's delete policies; none declared means Helm's default, `before-hook-creation`. */
function deletePolicies(object: KubeObject): string[] {
  const policies = hookOf(object)?.deletePolicies ?? [];
  return policies.length > 0 ? policies : ["before-hook-creation"];
}

/** Helm's install order for kinds of equal weight (the part of it this chart uses). */
const KIND_ORDER = [
  "ServiceAccount",
  "Secret",
  "ConfigMap",
  "Service",
  "StatefulSet",
  "Deployment",
  "Job",
  "Pod",
];

function byHookOrder(a: KubeObject, b: KubeObject): number {
  const kind = (o: KubeObject) => {
    const index = KIND_ORDER.indexOf(o.kind);
    return index === -1 ? KIND_ORDER.length : index;
  };
  const weight = (o: KubeObject) => hookOf(o)?.weight ?? 0;
  return weight(a) - weight(b) || kind(a) - kind(b) || a.metadata.name.localeCompare(b.metadata.name);
}

// ---------------------------------------------------------------------------------------------
// The namespace

export interface PodmanNamespaceOptions {
  /** The namespace name (DNS names `svc.<namespace>…`); also names the podman network. */
  namespace: string;
  /** An image with `node` on PATH for the Service proxies and the probe agent (the app image). */
  agentImage: string;
  /** A host directory for ConfigMap/Secret volume files and Service endpoints (created). */
  workDir: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * Pods whose labels match `selector` also join `network` (egress beyond the cluster: for the
   * federation gateways, the network the federating domains share).
   */
  extraNetworks?: readonly { selector: Record<string, string>; network: string }[];
  /** Where a deleted pod's output is kept (`<pod>.log`), for reading after a failed test. */
  logDir?: string;
}

interface PodState {
  name: string;
  container: string;
  owner: string;
  labels: Record<string, string>;
  spec: PodSpec;
  templateHash: string;
  ready: boolean;
  terminating: boolean;
  /** Consecutive failed readiness checks since it was last ready. */
  failures: number;
  /** The pod's IP address on the namespace network (Service endpoints and probes use it). */
  address: string;
}

interface ServiceState {
  release: string;
  name: string;
  selector: Record<string, string>;
  ports: ServicePort[];
  headless: boolean;
  proxy?: string;
  /** The proxy's address on the namespace network (the Service's cluster IP). */
  clusterIp?: string;
  endpointsDir: string;
}

interface WorkloadState {
  release: string;
  kind: "Deployment" | "StatefulSet";
  name: string;
  templateHash: string;
  pods: PodState[];
}

/** Containers, volumes and networks this stand-in made carry this label (value: the namespace). */
export const NAMESPACE_LABEL = "phoenix.kube.namespace";

const AGENT_DIR = fileURLToPath(new URL("./agent/", import.meta.url));

export class PodmanNamespace {
  readonly namespace: string;
  readonly network: string;
  readonly #options: PodmanNamespaceOptions;
  readonly #data = new Map<string, Record<string, string>>();
  readonly #services = new Map<string, ServiceState>();
  readonly #workloads = new Map<string, WorkloadState>();
  readonly #imageUsers = new Map<string, string>();
  #agent: ProbeAgent | undefined;
  #monitor: NodeJS.Timeout | undefined;
  #sequence = 0;

  private constructor(options: PodmanNamespaceOptions) {
    this.#options = options;
    this.namespace = options.namespace;
    this.network = `kube-${options.namespace}`;
  }

  /** Creates the namespace: its network and its probe agent. */
  static async create(options: PodmanNamespaceOptions): Promise<PodmanNamespace> {
    const ns = new PodmanNamespace(options);
    await mkdir(options.workDir, { recursive: true });
    await podman(["network", "create", "--label", `${NAMESPACE_LABEL}=${ns.namespace}`, ns.network]);
    const agent = `${ns.network}-kubelet`;
    await podman([
      "run",
      "-d",
      "--name",
      agent,
      "--network",
      ns.network,
      ...helperContainer(ns.namespace),
      "-v",
      `${AGENT_DIR}:/kube:ro`,
      "--entrypoint",
      '["node","-e","setInterval(()=>{},1<<30)"]',
      options.agentImage,
    ]);
    ns.#agent = new ProbeAgent(agent);
    ns.#monitor = setInterval(() => void ns.#recheckReadiness(), 3000);
    ns.#monitor.unref();
    return ns;
  }

  #log(line: string): void {
    this.#options.log?.(`[${this.namespace}] ${line}`);
  }

  /** Applies objects that exist before the release (e.g. an existingSecret an operator created). */
  applyConfig(objects: readonly KubeObject[]): void {
    for (const object of objects) this.#applyData(object);
  }

  /** `helm install RELEASE`: pre-install hooks, the release's objects (ready), post-install hooks. */
  async install(release: string, objects: readonly KubeObject[]): Promise<void> {
    this.#warnNotReproduced(objects);
    await this.#runHooks(objects, "pre-install");
    await this.#applyRelease(release, objects, { rolling: false });
    await this.#runHooks(objects, "post-install");
  }

  /** `helm upgrade`: pre-upgrade hooks, changed workloads rolled one pod at a time, post-upgrade. */
  async upgrade(release: string, objects: readonly KubeObject[]): Promise<void> {
    this.#warnNotReproduced(objects);
    await this.#runHooks(objects, "pre-upgrade");
    await this.#applyRelease(release, objects, { rolling: true });
    await this.#runHooks(objects, "post-upgrade");
  }

  /** `helm test`: the release's test hooks in order; throws with the pod's output when one fails. */
  async test(objects: readonly KubeObject[]): Promise<string[]> {
    return this.#runHooks(objects, "test");
  }

  /**
   * `helm uninstall RELEASE`: its workloads stopped and removed, its Services gone. Claim volumes
   * stay (as PVCs do), and so do hook pods that no delete policy removes (as with Helm).
   */
  async uninstall(release: string): Promise<void> {
    for (const workload of [...this.#workloads.values()].reverse()) {
      if (workload.release !== release) continue;
      for (const pod of workload.pods) await this.#deletePod(pod);
      this.#workloads.delete(workload.name);
    }
    for (const service of [...this.#services.values()]) {
      if (service.release !== release) continue;
      if (service.proxy) await podman(["rm", "-f", "-v", "-t", "2", service.proxy], { allowFailure: true });
      this.#services.delete(service.name);
    }
  }

  /** Removes what is left of the namespace: agent, volumes (PVCs too), network, work files. */
  async delete(): Promise<void> {
    if (this.#monitor) clearInterval(this.#monitor);
    this.#agent?.close();
    const label = `label=${NAMESPACE_LABEL}=${this.namespace}`;
    const left = await podman(["ps", "-aq", "--filter", label], { allowFailure: true });
    const ids = left.stdout.split("\n").filter(Boolean);
    if (ids.length > 0) await podman(["rm", "-f", "-v", "-t", "2", ...ids], { allowFailure: true });
    const volumes = await podman(["volume", "ls", "-q", "--filter", label], { allowFailure: true });
    for (const volume of volumes.stdout.split("\n").filter(Boolean)) {
      await podman(["volume", "rm", "-f", volume], { allowFailure: true });
    }
    await podman(["network", "rm", "-f", this.network], { allowFailure: true });
    await rm(this.#options.workDir, { recursive: true, force: true });
  }

  /** Containers of this namespace still present (running or not), by name. */
  async containers(): Promise<string[]> {
    const out = await podman([
      "ps",
      "-a",
      "--format",
      "{{.Names}}",
      "--filter",
      `label=${NAMESPACE_LABEL}=${this.namespace}`,
    ]);
    return out.stdout.split("\n").filter((name) => name !== "" && name !== `${this.network}-kubelet`);
  }

  /**
   * Publishes a Service on another network under public names — what a LoadBalancer plus DNS
   * records do for the outside world (here: the network the federating domains share).
   */
  async exposeService(service: string, network: string, aliases: readonly string[]): Promise<void> {
    const state = this.#services.get(service);
    if (!state?.proxy) throw new KubeStandInError(`no Service ${service} with a proxy in ${this.namespace}`);
    const aliasArgs = aliases.flatMap((alias) => ["--alias", alias]);
    await podman(["network", "connect", ...aliasArgs, network, state.proxy]);
  }

  /**
   * Runs a one-off container on the namespace network (a client inside the cluster) and returns
   * its output; `volumes` are `name:/path` podman volumes. Throws with the output when it fails.
   */
  async run(options: {
    image: string;
    args: readonly string[];
    volumes?: readonly string[];
    env?: Record<string, string>;
    timeoutMs?: number;
    allowFailure?: boolean;
  }): Promise<{ code: number; stdout: string; stderr: string }> {
    const name = `${this.network}-run-${++this.#sequence}`;
    const args = [
      "run",
      "--rm",
      "--name",
      name,
      "--network",
      this.network,
      ...helperContainer(this.namespace),
      ...this.#serviceHosts(),
      "--read-only-tmpfs=false",
      ...(options.volumes ?? []).flatMap((volume) => ["-v", volume]),
      ...Object.entries(options.env ?? {}).flatMap(([key, value]) => ["-e", `${key}=${value}`]),
      options.image,
      ...options.args,
    ];
    return podman(args, {
      timeoutMs: options.timeoutMs ?? 120_000,
      allowFailure: options.allowFailure ?? false,
    });
  }

  // -------------------------------------------------------------------------------------------
  // Applying

  #warnNotReproduced(objects: readonly KubeObject[]): void {
    const kinds = [...new Set(objects.filter((o) => NOT_REPRODUCED.has(o.kind)).map((o) => o.kind))];
    if (kinds.length > 0) this.#log(`not reproduced (checked statically): ${kinds.sort().join(", ")}`);
  }

  #applyData(object: KubeObject): void {
    if (object.kind === "ConfigMap") {
      this.#data.set(`ConfigMap/${object.metadata.name}`, {
        ...((object.data as Record<string, string>) ?? {}),
      });
    } else if (object.kind === "Secret") {
      const decoded: Record<string, string> = {};
      for (const [key, value] of Object.entries((object.data as Record<string, string>) ?? {})) {
        decoded[key] = Buffer.from(value, "base64").toString("utf8");
      }
      Object.assign(decoded, (object.stringData as Record<string, string>) ?? {});
      this.#data.set(`Secret/${object.metadata.name}`, decoded);
    }
  }

  async #applyRelease(
    release: string,
    objects: readonly KubeObject[],
    { rolling }: { rolling: boolean },
  ): Promise<void> {
    const owned = objects.filter((object) => hookOf(object) === undefined);
    for (const object of owned) this.#applyData(object);
    for (const object of owned.filter((o) => o.kind === "Service")) await this.#applyService(release, object);
    const workloads = owned.filter((o) => o.kind === "StatefulSet" || o.kind === "Deployment");
    // StatefulSets (the bundled databases) first, so their dependants need not crash-loop; then
    // every Deployment at once, as the controllers do (a pod's readiness may need another's, like
    // the edge gateway's needs the AS, DS and QS). An upgrade rolls one workload after another.
    const statefulSets = workloads.filter((o) => o.kind === "StatefulSet");
    const deployments = workloads.filter((o) => o.kind === "Deployment");
    for (const object of statefulSets) await this.#applyWorkload(release, object, rolling);
    if (rolling) {
      for (const object of deployments) await this.#applyWorkload(release, object, rolling);
    } else {
      await Promise.all(deployments.map((object) => this.#applyWorkload(release, object, rolling)));
    }
    const wanted = new Set(workloads.map((o) => o.metadata.name));
    for (const workload of [...this.#workloads.values()]) {
      if (workload.release !== release || wanted.has(workload.name)) continue;
      for (const pod of workload.pods) await this.#deletePod(pod);
      this.#workloads.delete(workload.name);
    }
  }

  async #applyService(release: string, object: KubeObject): Promise<void> {
    const spec = object.spec as {
      selector?: Record<string, string>;
      ports?: ServicePort[];
      clusterIP?: string;
      type?: string;
    };
    const name = object.metadata.name;
    const existing = this.#services.get(name);
    const state: ServiceState = {
      release,
      name,
      selector: spec.selector ?? {},
      ports: spec.ports ?? [],
      headless: spec.clusterIP === "None",
      endpointsDir: join(this.#options.workDir, "services", name),
      ...(existing?.proxy ? { proxy: existing.proxy } : {}),
    };
    this.#services.set(name, state);
    if (state.headless || state.proxy) {
      await this.#writeEndpoints(state);
      return;
    }
    await mkdir(state.endpointsDir, { recursive: true });
    await this.#writeEndpoints(state);
    const proxy = `${this.network}-svc-${name}`;
    const aliases = this.#dnsNames(name).flatMap((alias) => ["--network-alias", alias]);
    await podman([
      "run",
      "-d",
      "--name",
      proxy,
      "--network",
      this.network,
      ...aliases,
      ...helperContainer(this.namespace),
      // A Service may use any port (80, 443) although its proxy runs unprivileged.
      "--sysctl",
      "net.ipv4.ip_unprivileged_port_start=0",
      "-v",
      `${AGENT_DIR}:/kube:ro`,
      "-v",
      `${state.endpointsDir}:/endpoints:ro`,
      "-e",
      `SERVICE_PORTS=${state.ports.map((p) => p.port).join(",")}`,
      "--entrypoint",
      '["node","/kube/service-proxy.mjs"]',
      this.#options.agentImage,
    ]);
    state.proxy = proxy;
    state.clusterIp = await this.#addressOf(proxy);
    this.#log(`service ${name} (${state.ports.map((p) => p.port).join(", ")})`);
  }

  /** A container's address on the namespace network. */
  async #addressOf(container: string): Promise<string> {
    const out = await podman([
      "inspect",
      "--format",
      `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`,
      container,
    ]);
    const address = out.stdout.trim();
    if (!address) throw new KubeStandInError(`${container} has no address on ${this.network}`);
    return address;
  }

  /**
   * The Services' names as `/etc/hosts` entries of a new container. Kubernetes DNS answers Service
   * names at once; podman's DNS may stall for seconds while it reloads for containers coming and
   * going, which would show up as timeouts no cluster has. Other names still go to podman's DNS.
   */
  #serviceHosts(): string[] {
    return [...this.#services.values()].flatMap((service) =>
      service.clusterIp
        ? this.#dnsNames(service.name).flatMap((name) => ["--add-host", `${name}:${service.clusterIp}`])
        : [],
    );
  }

  #dnsNames(name: string): string[] {
    const ns = this.namespace;
    return [name, `${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`];
  }

  /** Recomputes every Service's endpoints from the pods that are ready and not terminating. */
  async #refreshEndpoints(): Promise<void> {
    for (const service of this.#services.values()) await this.#writeEndpoints(service);
  }

  /** Endpoint writes run one at a time: each computes from the pods as they are when it runs. */
  #endpointWrites: Promise<void> = Promise.resolve();

  #writeEndpoints(service: ServiceState): Promise<void> {
    const write = this.#endpointWrites.then(() => this.#writeEndpointsNow(service));
    this.#endpointWrites = write.catch(() => undefined);
    return write;
  }

  async #writeEndpointsNow(service: ServiceState): Promise<void> {
    if (service.headless) return;
    const pods = this.#pods().filter(
      (pod) => pod.ready && !pod.terminating && matches(service.selector, pod.labels),
    );
    const endpoints: Record<string, string[]> = {};
    for (const port of service.ports) {
      endpoints[String(port.port)] = pods.map((pod) => `${pod.address}:${targetPortOf(port, pod.spec)}`);
    }
    await mkdir(service.endpointsDir, { recursive: true });
    const file = join(service.endpointsDir, "endpoints.json");
    const temporary = `${file}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(temporary, JSON.stringify(endpoints));
    await rename(temporary, file);
  }

  #pods(): PodState[] {
    return [...this.#workloads.values()].flatMap((workload) => workload.pods);
  }

  async #applyWorkload(release: string, object: KubeObject, rolling: boolean): Promise<void> {
    const kind = object.kind as "Deployment" | "StatefulSet";
    const spec = object.spec as {
      replicas?: number;
      template: PodTemplate;
      volumeClaimTemplates?: { metadata: { name: string } }[];
    };
    const name = object.metadata.name;
    const replicas = spec.replicas ?? 1;
    const templateHash = hashOf(spec.template).slice(0, 10);
    let workload = this.#workloads.get(name);
    if (!workload) {
      workload = { release, kind, name, templateHash, pods: [] };
      this.#workloads.set(name, workload);
    }
    const claims = (spec.volumeClaimTemplates ?? []).map((claim) => claim.metadata.name);
    if (workload.templateHash === templateHash && workload.pods.length === replicas) return;
    if (workload.pods.length > 0 && workload.templateHash !== templateHash && !rolling) {
      throw new KubeStandInError(`${kind} ${name} exists with another template; use upgrade`);
    }
    const old = workload.pods.filter((pod) => pod.templateHash !== templateHash);
    workload.templateHash = templateHash;
    this.#log(`${kind.toLowerCase()} ${name}: ${replicas} replica(s)${old.length > 0 ? ", rolling" : ""}`);
    if (kind === "StatefulSet") {
      // Ordered: pod i replaced (same name, same volumes) from the highest ordinal down, then
      // missing ordinals created in order, each ready before the next.
      for (const pod of [...old].reverse()) {
        await this.#deletePod(pod);
        workload.pods.splice(workload.pods.indexOf(pod), 1);
      }
      for (let i = 0; i < replicas; i++) {
        if (workload.pods.some((pod) => pod.name === `${name}-${i}`)) continue;
        const pod = await this.#startPod(`${name}-${i}`, name, spec.template, templateHash, claims);
        workload.pods.push(pod);
        await this.#awaitReady(pod);
      }
      return;
    }
    // Deployment, RollingUpdate with one surge and none unavailable: a new pod ready first, then
    // one old pod retired, until every pod runs the new template.
    let current = workload.pods.filter((pod) => pod.templateHash === templateHash).length;
    while (current < replicas || old.length > 0) {
      if (current < replicas) {
        const podName = `${name}-${templateHash}-${randomBytes(3).toString("hex")}`;
        const pod = await this.#startPod(podName, name, spec.template, templateHash, []);
        workload.pods.push(pod);
        await this.#awaitReady(pod);
        current++;
      }
      const retired = old.shift();
      if (retired) {
        await this.#deletePod(retired);
        workload.pods.splice(workload.pods.indexOf(retired), 1);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Pods

  async #startPod(
    podName: string,
    owner: string,
    template: PodTemplate,
    templateHash: string,
    claims: readonly string[],
  ): Promise<PodState> {
    const spec = template.spec;
    if (spec.containers.length !== 1) {
      throw new KubeStandInError(
        `pod ${podName}: ${spec.containers.length} containers; the stand-in runs pods of one container`,
      );
    }
    const labels = template.metadata?.labels ?? {};
    const container = `${this.network}-${podName}`;
    for (const init of spec.initContainers ?? []) {
      const initName = `${container}-init-${init.name}`;
      await this.#runContainer(initName, podName, labels, spec, init, claims, "no");
      const exit = await this.#wait(initName, 300_000);
      const logs = await this.#logs(initName);
      await podman(["rm", "-f", "-v", initName], { allowFailure: true });
      if (exit !== 0)
        throw new KubeStandInError(`pod ${podName}: init container ${init.name} exited ${exit}\n${logs}`);
    }
    await this.#runContainer(
      container,
      podName,
      labels,
      spec,
      spec.containers[0] as Container,
      claims,
      "always",
    );
    return {
      address: await this.#addressOf(container),
      name: podName,
      container,
      owner,
      labels,
      spec,
      templateHash,
      ready: false,
      terminating: false,
      failures: 0,
    };
  }

  async #runContainer(
    name: string,
    podName: string,
    labels: Record<string, string>,
    spec: PodSpec,
    container: Container,
    claims: readonly string[],
    restart: string,
  ): Promise<void> {
    const security = { ...spec.securityContext, ...container.securityContext };
    const args = [
      "run",
      "-d",
      "--name",
      name,
      "--hostname",
      podName.slice(0, 63),
      "--label",
      `${NAMESPACE_LABEL}=${this.namespace}`,
      "--label",
      `phoenix.kube.pod=${podName}`,
      ...Object.entries(labels).flatMap(([key, value]) => ["--label", `${key}=${value}`]),
      "--pull",
      "never",
      // The kubelet ignores an image's HEALTHCHECK (its probes are the pod's) and its VOLUMEs
      // (only the pod's volumes are mounted; nothing is left behind by a deleted pod).
      "--no-healthcheck",
      "--image-volume",
      "ignore",
      "--restart",
      restart,
      "--stop-timeout",
      String(spec.terminationGracePeriodSeconds ?? 30),
    ];
    // A name for the pod on the namespace network: a DNS label of at most 63 characters
    // (container names can be longer), set explicitly because podman adds no name alias to a
    // container on two networks. Headless Services name their pods directly (StatefulSet
    // members: `pod.service`).
    const aliases = [dnsLabelOf(name)];
    for (const service of this.#services.values()) {
      if (!service.headless || !matches(service.selector, labels)) continue;
      aliases.push(...this.#dnsNames(service.name), ...this.#dnsNames(`${podName}.${service.name}`));
    }
    args.push("--network", `${this.network}:${aliases.map((alias) => `alias=${alias}`).join(",")}`);
    for (const extra of this.#options.extraNetworks ?? []) {
      if (matches(extra.selector, labels)) args.push("--network", extra.network);
    }
    args.push(...this.#serviceHosts());
    const user = await this.#userOf(container.image, security, podName);
    if (user) args.push("--user", user);
    if (security.fsGroup !== undefined) args.push("--group-add", String(security.fsGroup));
    if (security.readOnlyRootFilesystem) args.push("--read-only", "--read-only-tmpfs=false");
    if (security.allowPrivilegeEscalation === false) args.push("--security-opt", "no-new-privileges");
    for (const cap of security.capabilities?.drop ?? []) args.push("--cap-drop", cap.toLowerCase());
    for (const cap of security.capabilities?.add ?? []) args.push("--cap-add", cap.toLowerCase());
    const limits = container.resources?.limits ?? {};
    if (limits.memory) args.push("--memory", podmanBytes(limits.memory));
    if (limits.cpu) args.push("--cpus", String(cpuCores(limits.cpu)));
    const env = this.#envOf(container, podName);
    for (const [key, value] of Object.entries(env)) args.push("-e", `${key}=${value}`);
    args.push(...(await this.#mountsOf(podName, spec, container, claims, security)));
    if (container.command)
      args.push("--entrypoint", JSON.stringify(container.command.map((part) => expand(part, env))));
    args.push(container.image, ...(container.args ?? []).map((part) => expand(part, env)));
    await podman(args);
  }

  async #userOf(image: string, security: SecurityContext, podName: string): Promise<string | undefined> {
    if (security.runAsUser !== undefined) {
      if (security.runAsNonRoot && security.runAsUser === 0) {
        throw new KubeStandInError(`pod ${podName}: runAsNonRoot with runAsUser 0`);
      }
      return `${security.runAsUser}${security.runAsGroup !== undefined ? `:${security.runAsGroup}` : ""}`;
    }
    if (security.runAsNonRoot) {
      let imageUser = this.#imageUsers.get(image);
      if (imageUser === undefined) {
        imageUser = (await podman(["image", "inspect", "--format", "{{.Config.User}}", image])).stdout.trim();
        this.#imageUsers.set(image, imageUser);
      }
      const uid = imageUser.split(":")[0] ?? "";
      // The kubelet's rule: a non-numeric user cannot be verified, uid 0 is refused.
      if (uid === "" || uid === "0" || uid === "root" || !/^\d+$/.test(uid)) {
        throw new KubeStandInError(
          `pod ${podName}: runAsNonRoot, but image ${image} runs as "${imageUser || "root"}"`,
        );
      }
    }
    return undefined;
  }

  #lookup(kind: "ConfigMap" | "Secret", name: string, optional: boolean | undefined, podName: string) {
    const data = this.#data.get(`${kind}/${name}`);
    if (!data && !optional) throw new KubeStandInError(`pod ${podName}: ${kind} ${name} not found`);
    return data;
  }

  #envOf(container: Container, podName: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const source of container.envFrom ?? []) {
      const ref = source.configMapRef ?? source.secretRef;
      if (!ref) continue;
      const data =
        this.#lookup(source.configMapRef ? "ConfigMap" : "Secret", ref.name, ref.optional, podName) ?? {};
      for (const [key, value] of Object.entries(data)) env[`${source.prefix ?? ""}${key}`] = value;
    }
    for (const variable of container.env ?? []) {
      const from = variable.valueFrom;
      if (!from) {
        env[variable.name] = expand(variable.value ?? "", env);
        continue;
      }
      const keyRef = from.secretKeyRef ?? from.configMapKeyRef;
      if (keyRef) {
        const kind = from.secretKeyRef ? "Secret" : "ConfigMap";
        const data = this.#lookup(kind, keyRef.name, keyRef.optional, podName);
        const value = data?.[keyRef.key];
        if (value === undefined && !keyRef.optional) {
          throw new KubeStandInError(
            `pod ${podName}: ${variable.name}: key ${keyRef.key} not in ${kind} ${keyRef.name}`,
          );
        }
        if (value !== undefined) env[variable.name] = value;
      } else if (from.fieldRef) {
        const field = from.fieldRef.fieldPath;
        if (field === "metadata.name") env[variable.name] = podName;
        else if (field === "metadata.namespace") env[variable.name] = this.namespace;
        else
          throw new KubeStandInError(`pod ${podName}: ${variable.name}: fieldRef ${field} is not reproduced`);
      }
    }
    return env;
  }

  async #mountsOf(
    podName: string,
    spec: PodSpec,
    container: Container,
    claims: readonly string[],
    security: SecurityContext,
  ): Promise<string[]> {
    const args: string[] = [];
    const volumes = new Map((spec.volumes ?? []).map((volume) => [volume.name, volume]));
    for (const mount of container.volumeMounts ?? []) {
      const mode = mount.readOnly ? "ro" : "rw";
      if (claims.includes(mount.name)) {
        // A volumeClaimTemplate: one volume per pod name that outlives the pod (as a PVC does),
        // owned by the pod's user (fsGroup's effect on a fresh volume).
        const volume = `${this.network}-${mount.name}-${podName}`;
        const exists = await podman(["volume", "exists", volume], { allowFailure: true });
        if (exists.code !== 0) {
          await podman(["volume", "create", "--label", `${NAMESPACE_LABEL}=${this.namespace}`, volume]);
        }
        args.push("-v", `${volume}:${mount.mountPath}:${mode},U`);
        continue;
      }
      const volume = volumes.get(mount.name);
      if (!volume) throw new KubeStandInError(`pod ${podName}: volumeMount ${mount.name} names no volume`);
      if (volume.emptyDir) {
        if (mount.subPath)
          throw new KubeStandInError(`pod ${podName}: subPath on emptyDir is not reproduced`);
        // `U`: over a path the image declares a VOLUME, podman would ignore the mode (root 0755).
        args.push("--tmpfs", `${mount.mountPath}:rw,mode=1777,U`);
      } else if (volume.configMap || volume.secret) {
        const dir = await this.#projectFiles(podName, volume, security);
        const source = mount.subPath ? join(dir, mount.subPath) : dir;
        args.push("-v", `${source}:${mount.mountPath}:ro`);
      } else {
        throw new KubeStandInError(`pod ${podName}: volume ${volume.name} of this type is not reproduced`);
      }
    }
    return args;
  }

  /** A ConfigMap or Secret volume as files, readable by the pod's fsGroup like the kubelet makes them. */
  async #projectFiles(podName: string, volume: Volume, security: SecurityContext): Promise<string> {
    const kind = volume.configMap ? "ConfigMap" : "Secret";
    const source = volume.configMap ?? volume.secret;
    const name = volume.configMap?.name ?? volume.secret?.secretName ?? "";
    const data = this.#lookup(kind, name, source?.optional, podName) ?? {};
    const dir = join(this.#options.workDir, "pods", podName, volume.name);
    await mkdir(dir, { recursive: true });
    const items = source?.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    let mode = source?.defaultMode ?? 0o644;
    if (security.fsGroup !== undefined) mode |= 0o040;
    for (const item of items) {
      const value = data[item.key];
      if (value === undefined)
        throw new KubeStandInError(`pod ${podName}: key ${item.key} not in ${kind} ${name}`);
      const file = join(dir, item.path);
      await writeFile(file, value);
      await chmod(file, mode);
      if (security.fsGroup !== undefined) await chown(file, 0, security.fsGroup);
    }
    await chmod(dir, 0o755);
    return dir;
  }

  async #deletePod(pod: PodState): Promise<void> {
    pod.terminating = true;
    await this.#refreshEndpoints();
    if (this.#options.logDir) {
      await mkdir(this.#options.logDir, { recursive: true });
      const out = await podman(["logs", pod.container], { allowFailure: true });
      await writeFile(join(this.#options.logDir, `${pod.name}.log`), `${out.stdout}${out.stderr}`);
    }
    const preStop = pod.spec.containers[0]?.lifecycle?.preStop?.exec?.command;
    if (preStop) await podman(["exec", pod.container, ...preStop], { allowFailure: true, timeoutMs: 60_000 });
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    await podman(["stop", "-t", String(grace), pod.container], {
      allowFailure: true,
      timeoutMs: (grace + 30) * 1000,
    });
    await podman(["rm", "-f", "-v", pod.container], { allowFailure: true });
    await rm(join(this.#options.workDir, "pods", pod.name), { recursive: true, force: true });
    this.#log(`pod ${pod.name} deleted`);
  }

  async #wait(container: string, timeoutMs: number): Promise<number> {
    const result = await podman(["wait", container], { timeoutMs, allowFailure: true });
    if (result.code !== 0) {
      await podman(["rm", "-f", "-v", container], { allowFailure: true });
      throw new KubeStandInError(`${container} did not finish in ${timeoutMs} ms: ${result.stderr.trim()}`);
    }
    return Number(result.stdout.trim());
  }

  async #logs(container: string): Promise<string> {
    const out = await podman(["logs", "--tail", "60", container], { allowFailure: true });
    return `${out.stdout}${out.stderr}`.trim();
  }

  // -------------------------------------------------------------------------------------------
  // Probes

  /** Startup probe, then readiness until it passes; then the liveness probe once (checked to pass). */
  async #awaitReady(pod: PodState, timeoutMs = 240_000): Promise<void> {
    const container = pod.spec.containers[0] as Container;
    const deadline = Date.now() + timeoutMs;
    for (const [kind, probe] of [
      ["startup", container.startupProbe],
      ["readiness", container.readinessProbe],
    ] as const) {
      if (!probe) continue;
      await sleep((probe.initialDelaySeconds ?? 0) * 1000);
      let last = "";
      for (;;) {
        if (pod.terminating) return;
        const running = await this.#running(pod.container);
        if (!running) {
          throw new KubeStandInError(
            `pod ${pod.name} exited before it was ready:\n${await this.#logs(pod.container)}`,
          );
        }
        const result = await this.#probe(pod, probe);
        if (result.ok) break;
        last = result.reason ?? "";
        if (Date.now() > deadline) {
          throw new KubeStandInError(
            `pod ${pod.name}: ${kind} probe still failing (${last}):\n${await this.#logs(pod.container)}`,
          );
        }
        await sleep(Math.min(Math.max(probe.periodSeconds ?? 10, 1), 2) * 1000);
      }
    }
    if (container.livenessProbe) {
      const live = await this.#probe(pod, container.livenessProbe);
      if (!live.ok)
        throw new KubeStandInError(`pod ${pod.name}: ready but liveness probe fails (${live.reason})`);
    }
    pod.ready = true;
    pod.failures = 0;
    await this.#refreshEndpoints();
    this.#log(`pod ${pod.name} ready`);
  }

  async #recheckReadiness(): Promise<void> {
    for (const pod of this.#pods()) {
      const probe = pod.spec.containers[0]?.readinessProbe;
      if (!pod.ready || pod.terminating || !probe) continue;
      const result = await this.#probe(pod, probe).catch(() => ({ ok: false }));
      pod.failures = result.ok ? 0 : pod.failures + 1;
      if (pod.failures >= (probe.failureThreshold ?? 3) && pod.ready && !pod.terminating) {
        // Not ready any more: out of its Services until it passes again (the kubelet's rule).
        pod.ready = false;
        await this.#refreshEndpoints();
        this.#log(`pod ${pod.name} not ready`);
        void this.#awaitReady(pod).catch((error: Error) => this.#log(error.message));
      }
    }
  }

  async #running(container: string): Promise<boolean> {
    const out = await podman(["inspect", "--format", "{{.State.Running}}", container], {
      allowFailure: true,
    });
    return out.stdout.trim() === "true";
  }

  async #probe(pod: PodState, probe: Probe): Promise<{ ok: boolean; reason?: string }> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    if (probe.exec) {
      const out = await podman(["exec", pod.container, ...probe.exec.command], {
        allowFailure: true,
        timeoutMs: timeoutMs + 5000,
      });
      return out.code === 0 ? { ok: true } : { ok: false, reason: `exit ${out.code}: ${out.stderr.trim()}` };
    }
    if (!this.#agent) throw new KubeStandInError("namespace has no probe agent");
    const host = pod.address;
    if (probe.grpc) {
      return this.#agent.probe({
        kind: "grpc",
        host,
        port: probe.grpc.port,
        service: probe.grpc.service ?? "",
        timeoutMs,
      });
    }
    if (probe.httpGet) {
      const port = portOf(probe.httpGet.port, pod.spec);
      return this.#agent.probe({ kind: "http", host, port, path: probe.httpGet.path ?? "/", timeoutMs });
    }
    if (probe.tcpSocket)
      return this.#agent.probe({
        kind: "tcp",
        host,
        port: portOf(probe.tcpSocket.port, pod.spec),
        timeoutMs,
      });
    throw new KubeStandInError(`pod ${pod.name}: probe of an unknown kind`);
  }

  // -------------------------------------------------------------------------------------------
  // Hooks

  async #runHooks(objects: readonly KubeObject[], event: HookEvent): Promise<string[]> {
    const hooks = objects.filter((object) => hookOf(object)?.events.includes(event)).sort(byHookOrder);
    const outputs: string[] = [];
    for (const hook of hooks) {
      const policies = deletePolicies(hook);
      if (hook.kind === "ConfigMap" || hook.kind === "Secret") {
        this.#applyData(hook);
        continue;
      }
      if (hook.kind !== "Job" && hook.kind !== "Pod") {
        this.#log(`${event} hook ${hook.kind} ${hook.metadata.name}: not reproduced`);
        continue;
      }
      const container = `${this.network}-hook-${hook.metadata.name}`;
      if (policies.includes("before-hook-creation"))
        await podman(["rm", "-f", "-v", container], { allowFailure: true });
      const job =
        hook.kind === "Job"
          ? (hook.spec as { backoffLimit?: number; activeDeadlineSeconds?: number; template: PodTemplate })
          : undefined;
      const template: PodTemplate = job
        ? job.template
        : { metadata: hook.metadata, spec: hook.spec as PodSpec };
      const attempts = job ? (job.backoffLimit ?? 6) + 1 : 1;
      const timeoutMs = (job?.activeDeadlineSeconds ?? 600) * 1000;
      let exit = -1;
      let logs = "";
      for (let attempt = 1; attempt <= attempts && exit !== 0; attempt++) {
        await podman(["rm", "-f", "-v", container], { allowFailure: true });
        const spec = template.spec;
        await this.#runContainer(
          container,
          hook.metadata.name,
          template.metadata?.labels ?? {},
          spec,
          spec.containers[0] as Container,
          [],
          "no",
        );
        exit = await this.#wait(container, timeoutMs);
        logs = await this.#logs(container);
        this.#log(
          `${event} hook ${hook.kind} ${hook.metadata.name}: exit ${exit} (attempt ${attempt}/${attempts})`,
        );
        if (exit !== 0 && attempt < attempts) await sleep(Math.min(2 ** attempt, 10) * 1000);
      }
      outputs.push(logs);
      const remove = exit === 0 ? policies.includes("hook-succeeded") : policies.includes("hook-failed");
      if (remove) await podman(["rm", "-f", "-v", container], { allowFailure: true });
      if (exit !== 0)
        throw new KubeStandInError(
          `${event} hook ${hook.kind} ${hook.metadata.name} failed (exit ${exit}):\n${logs}`,
        );
    }
    return outputs;
  }
}

// ---------------------------------------------------------------------------------------------
// The probe agent: one long-lived `podman exec` per namespace answering probe requests.

interface ProbeRequest {
  kind: "grpc" | "http" | "tcp";
  host: string;
  port: number;
  service?: string;
  path?: string;
  timeoutMs: number;
}

class ProbeAgent {
  readonly #container: string;
  #process: ChildProcessWithoutNullStreams | undefined;
  readonly #waiting = new Map<number, (result: { ok: boolean; reason?: string }) => void>();
  #next = 0;
  #buffer = "";

  constructor(container: string) {
    this.#container = container;
  }

  #start(): ChildProcessWithoutNullStreams {
    const child = spawn("podman", ["exec", "-i", this.#container, "node", "/kube/probe.mjs"]);
    // An agent that died (its container stopped) closes the pipe: a write then fails with EPIPE
    // and a failed spawn emits "error"; both end in the exit handler below, which answers every
    // waiting probe "probe agent exited" — neither may become an uncaught error.
    child.stdin.on("error", () => undefined);
    child.on("error", () => undefined);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      this.#buffer += chunk;
      let newline = this.#buffer.indexOf("\n");
      while (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        newline = this.#buffer.indexOf("\n");
        try {
          const answer = JSON.parse(line) as { id: number; ok: boolean; reason?: string };
          this.#waiting.get(answer.id)?.(answer);
          this.#waiting.delete(answer.id);
        } catch {
          // not an answer line
        }
      }
    });
    child.on("exit", () => {
      this.#process = undefined;
      for (const resolve of this.#waiting.values()) resolve({ ok: false, reason: "probe agent exited" });
      this.#waiting.clear();
    });
    return child;
  }

  probe(request: ProbeRequest): Promise<{ ok: boolean; reason?: string }> {
    this.#process ??= this.#start();
    const child = this.#process;
    const id = ++this.#next;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve({ ok: false, reason: "probe agent did not answer" });
      }, request.timeoutMs + 10_000);
      this.#waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      child.stdin.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  close(): void {
    const child = this.#process;
    child?.stdin.end();
    child?.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}

function portOf(port: number | string, spec: PodSpec): number {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  for (const container of spec.containers) {
    const found = container.ports?.find((p) => p.name === port);
    if (found) return found.containerPort;
  }
  throw new KubeStandInError(`named port ${port} is not declared by the pod`);
}

function targetPortOf(port: ServicePort, spec: PodSpec): number {
  return portOf(port.targetPort ?? port.port, spec);
}

/** Kubernetes `$(VAR)` references to earlier variables; `$$(VAR)` stays literal. */
function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return "$(";
    return env[name] ?? match;
  });
}

function podmanBytes(quantity: string): string {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  if (!match) throw new KubeStandInError(`memory quantity ${quantity} is not reproduced`);
  const value = Number(match[1]);
  const factor = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ""] ?? 1;
  return String(Math.round(value * factor));
}

function cpuCores(quantity: string): number {
  return quantity.endsWith("m") ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
}

/**
 * What the stand-in's own containers (probe agent, Service proxies, one-off clients) run with:
 * the namespace label, a read-only root, an unprivileged user, no capabilities, local images only.
 */
function helperContainer(namespace: string): string[] {
  return [
    "--label",
    `${NAMESPACE_LABEL}=${namespace}`,
    "--read-only",
    "--user",
    "10001:10001",
    "--cap-drop",
    "all",
    "--pull",
    "never",
    "--no-healthcheck",
    "--image-volume",
    "ignore",
  ];
}

/** A short DNS label standing for a container (DNS labels have at most 63 characters). */
function dnsLabelOf(container: string): string {
  return `pod-${createHash("sha256").update(container).digest("hex").slice(0, 16)}`;
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
