// The Helm chart k8s/charts/phoenix, checked without a cluster: rendered in the configurations an
// operator uses, every object validated against the Kubernetes API schemas and linted, each pod's
// environment parsed by its own service's config schema, and the behaviour operators rely on
// (hooks, Service names and ports, kept secrets, refused values) asserted.
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { authConfigSchema } from "@phoenix/auth";
import { deliveryConfigSchema } from "@phoenix/delivery";
import { edgeGatewayConfig } from "@phoenix/edge-gateway";
import { gatewayConfigSchema } from "@phoenix/federation-gateway";
import { migrateConfigSchema } from "@phoenix/homeserver";
import { queueConfigSchema } from "@phoenix/queue";
import { deploymentNatsUsers, natsAuthorization } from "@phoenix/runtime/bus";
import { loadConfig } from "@phoenix/runtime/config";
import {
  ChartRenderError,
  ChartValuesError,
  canRenderCharts,
  hookOf,
  isRecord,
  type KubeObject,
  lintObjects,
  podTemplateOf,
  type RenderChartOptions,
  renderChart,
  renderChartRelease,
  type SetValue,
  templateOf,
  validateObjects,
} from "@phoenix/test-harness/kube";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CHART = join(ROOT, "k8s/charts/phoenix");
const support = canRenderCharts();

type Set = Record<string, SetValue>;

/** An external Postgres and NATS: the chart's default shape, plus the required domain. */
const EXTERNAL: Set = {
  domain: "alpha.example",
  "image.tag": "1.2.3",
  "externalDatabase.host": "pg.internal",
  "externalDatabase.password": "p@ss word",
  "externalDatabase.parameters": "sslmode=require",
  "externalNats.url": "nats://nats.internal:4222",
  "externalNats.user": "phoenix",
  "externalNats.password": "nats-secret",
};
const BUNDLED: Set = { domain: "beta.example", "postgresql.enabled": true, "nats.enabled": true };
const EXISTING_SECRETS = ["phoenix-keys", "phoenix-databases", "phoenix-nats", "federation-tls", "regcred"];
const EXISTING: Set = {
  domain: "gamma.example",
  "secrets.existingSecret": "phoenix-keys",
  "externalDatabase.existingSecret": "phoenix-databases",
  "externalNats.url": "nats://n1:4222,nats://n2:4222,nats://n3:4222",
  "externalNats.existingSecret": "phoenix-nats",
  "nats.streamReplicas": 3,
  "imagePullSecrets[0].name": "regcred",
};
const FEDERATION_TLS: Set = {
  ...EXTERNAL,
  "federation.enabled": true,
  "federation.tls.existingSecret": "federation-tls",
  "federation.tls.ca.enabled": true,
  "federation.mtls": true,
  "federation.allowedDomains": ["beta.example", "gamma.example"],
  "federation.peers.beta\\.example": "10.1.2.3:9443",
  "federation.service.type": "LoadBalancer",
  "federation.service.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-type": "nlb",
};
const CERT_MANAGER: Set = {
  ...BUNDLED,
  "federation.enabled": true,
  "federation.tls.certManager.enabled": true,
  "federation.tls.certManager.issuerRef.name": "letsencrypt",
  "federation.policy": "open",
  "ingress.enabled": true,
  "ingress.className": "nginx",
  "ingress.hosts[0].host": "chat.beta.example",
  "ingress.tls[0].secretName": "chat-tls",
  "ingress.tls[0].hosts[0]": "chat.beta.example",
  "edgeGateway.autoscaling.enabled": true,
  "auth.autoscaling.enabled": true,
  "federation.autoscaling.enabled": true,
  "auth.config.AS_CLIENT_INACTIVITY_LIMIT": "30d",
};
const PUSH: Set = {
  ...EXTERNAL,
  "queue.push.apns.enabled": true,
  "queue.push.apns.existingSecret": "push-keys",
  "queue.push.apns.keyId": "KEY1234567",
  "queue.push.apns.teamId": "TEAM123456",
  "queue.push.apns.topic": "org.phoenix.app",
  "queue.push.fcm.enabled": true,
  "queue.push.fcm.existingSecret": "push-keys",
};
/** The AS admin listener on with one operator key (docs/admin.md). */
const ADMIN: Set = {
  ...EXTERNAL,
  "auth.admin.port": 50070,
  "auth.admin.operatorKeys": [`ops:${"A".repeat(43)}`],
};

const MONITORED: Set = {
  ...EXTERNAL,
  "metrics.serviceMonitor.enabled": true,
  "metrics.prometheusRule.enabled": true,
  "metrics.prometheusRule.labels.release": "prometheus",
  "networkPolicy.enabled": false,
};

function render(set: Set, extra: Partial<RenderChartOptions> = {}): Promise<KubeObject[]> {
  return renderChart({ chartDir: CHART, releaseName: "alpha", namespace: "chat", set, ...extra });
}

function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const object = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!object) throw new Error(`${kind}/${name} is not in the render`);
  return object;
}

function secretData(secret: KubeObject): Record<string, string> {
  const data = isRecord(secret.data) ? secret.data : {};
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString()]),
  );
}

/** The (only) container of a workload's pod template. */
function containerOf(workload: KubeObject): Record<string, unknown> {
  const containers = podTemplateOf(workload)?.spec.containers;
  if (!Array.isArray(containers) || !isRecord(containers[0]))
    throw new Error(`${workload.metadata.name}: no container`);
  return containers[0];
}

/** The environment a container gets: its envFrom ConfigMaps, then env with Secret refs resolved. */
function environmentOf(objects: readonly KubeObject[], workload: KubeObject): Record<string, string> {
  const container = containerOf(workload);
  const env: Record<string, string> = {};
  for (const from of (container.envFrom as { configMapRef?: { name: string } }[] | undefined) ?? []) {
    if (!from.configMapRef) continue;
    Object.assign(env, find(objects, "ConfigMap", from.configMapRef.name).data);
  }
  type EnvEntry = {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
  };
  for (const entry of (container.env as EnvEntry[] | undefined) ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    const ref = entry.valueFrom?.secretKeyRef;
    const secret = ref && objects.find((o) => o.kind === "Secret" && o.metadata.name === ref.name);
    const value = ref && secret ? secretData(secret)[ref.key] : undefined;
    if (value !== undefined) env[entry.name] = value;
    // A required key of the operator's existing Secret: a stand-in of the documented format.
    else if (ref && !secret && !ref.optional && ref.key.endsWith("_KEY")) env[entry.name] = "0f".repeat(32);
  }
  return env;
}

const SCHEMAS: Record<string, z.ZodObject> = {
  auth: authConfigSchema,
  delivery: deliveryConfigSchema,
  queue: queueConfigSchema,
  "federation-gateway": gatewayConfigSchema,
  "edge-gateway": edgeGatewayConfig,
  migrate: migrateConfigSchema,
};

if (!support.ok) {
  // Without Go + Sprig the chart cannot be rendered here; CI installs them and sets
  // PHOENIX_REQUIRE_CHART_RENDERER, so there a missing renderer fails instead of skipping.
  describe("Helm chart k8s/charts/phoenix", () => {
    if (process.env.PHOENIX_REQUIRE_CHART_RENDERER) {
      it("can be rendered", () => {
        throw new Error(`the chart renderer is required but unavailable: ${support.reason}`);
      });
    } else {
      it.skip(`skipped: ${support.reason}`, () => {});
    }
  });
} else {
  describe(`Helm chart k8s/charts/phoenix (rendered with ${support.reason})`, () => {
    const configurations: [string, Set, string[]][] = [
      ["external Postgres and NATS (defaults + domain)", EXTERNAL, []],
      ["bundled Postgres and NATS", BUNDLED, []],
      ["existing Secrets for keys, databases and NATS", EXISTING, EXISTING_SECRETS],
      ["federation with TLS and CA from an existing Secret, mTLS", FEDERATION_TLS, EXISTING_SECRETS],
      ["federation with cert-manager, ingress and autoscaling", CERT_MANAGER, []],
      ["ServiceMonitors, NetworkPolicies off", MONITORED, []],
      ["APNs and FCM with their keys from an existing Secret", PUSH, ["push-keys"]],
      ["the AS admin listener with an operator key", ADMIN, []],
    ];

    it.each(configurations)(
      "%s: every object passes the API schemas and the lint",
      async (_name, set, external) => {
        const objects = await render(set);
        expect(await validateObjects(objects)).toEqual([]);
        expect(lintObjects(objects, { externalSecrets: external })).toEqual([]);
      },
    );

    it.each(configurations)(
      "%s: each container's environment is accepted by its service",
      async (_name, set) => {
        const objects = await render(set);
        const workloads = objects.filter((o) => o.kind === "Deployment" || o.kind === "Job");
        expect(workloads.map((w) => w.metadata.labels?.["app.kubernetes.io/component"]).sort()).toEqual([
          "auth",
          "delivery",
          "edge-gateway",
          "federation-gateway",
          "migrate",
          "queue",
        ]);
        for (const workload of workloads) {
          const component = workload.metadata.labels?.["app.kubernetes.io/component"] as string;
          const schema = SCHEMAS[component] as z.ZodObject;
          const env = environmentOf(objects, workload);
          // A misspelt name would be ignored silently by the service: every name must be one of its variables.
          const unknown = Object.keys(env).filter((name) => !(name in schema.shape));
          expect(unknown, `${component}: variables its config does not read`).toEqual([]);
          expect(() => loadConfig(schema, env), component).not.toThrow();
        }
      },
    );

    it("puts the example alert rules of files/phoenix-alerts.yaml into a PrometheusRule, unrendered", async () => {
      const objects = await render(MONITORED);
      const rule = find(objects, "PrometheusRule", "alpha-phoenix-alerts");
      expect(rule.metadata.labels?.release).toBe("prometheus");
      const file = parseYaml(await readFile(join(CHART, "files", "phoenix-alerts.yaml"), "utf8")) as object;
      // The same groups, and Prometheus' own {{ $labels … }} templates left for Prometheus.
      expect(rule.spec).toEqual(file);
      expect(JSON.stringify(rule.spec)).toContain("{{ $labels.service }}");
      expect((await render(EXTERNAL)).some((o) => o.kind === "PrometheusRule")).toBe(false);
    });

    it("names Services <fullname>-<component> with the ports the runner and the services use", async () => {
      const objects = await render(FEDERATION_TLS);
      const ports = (name: string) =>
        (find(objects, "Service", name).spec as { ports: { name: string; port: number }[] }).ports
          .map((p) => `${p.name}:${p.port}`)
          .sort();
      expect(ports("alpha-phoenix-auth")).toEqual(["grpc:50051", "metrics:9461"]);
      expect(ports("alpha-phoenix-delivery")).toEqual(["grpc:50052", "metrics:9466"]);
      expect(ports("alpha-phoenix-queue")).toEqual(["grpc:50053", "metrics:9467"]);
      expect(ports("alpha-phoenix-federation-gateway")).toEqual(["grpc-internal:50055", "metrics:9468"]);
      expect(ports("alpha-phoenix-edge-gateway")).toEqual(["http:8080", "metrics:9460"]);
      const federation = find(objects, "Service", "alpha-phoenix-federation");
      expect(ports("alpha-phoenix-federation")).toEqual(["grpc-federation:8443"]);
      expect((federation.spec as { type: string }).type).toBe("LoadBalancer");
      expect(federation.metadata.annotations).toMatchObject({
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
      });
      // A release named like the chart is not prefixed twice.
      const named = await renderChart({ chartDir: CHART, releaseName: "my-phoenix", set: EXTERNAL });
      expect(named.some((o) => o.kind === "Service" && o.metadata.name === "my-phoenix-auth")).toBe(true);
    });

    it("probes every deployable on its metrics port: liveness and startup /healthz, readiness /readyz", async () => {
      const objects = await render(FEDERATION_TLS);
      const deployments = objects.filter(
        (o) => o.kind === "Deployment" && o.metadata.name.startsWith("alpha-phoenix-"),
      );
      expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
        "alpha-phoenix-auth",
        "alpha-phoenix-delivery",
        "alpha-phoenix-edge-gateway",
        "alpha-phoenix-federation-gateway",
        "alpha-phoenix-queue",
      ]);
      for (const deployment of deployments) {
        const [container] = (
          deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } }
        ).template.spec.containers;
        const probe = (kind: string) => (container?.[kind] as { httpGet?: unknown } | undefined)?.httpGet;
        // A dependency that is down makes the pod unready (/readyz), never restarts it (/healthz).
        expect(
          [probe("startupProbe"), probe("livenessProbe"), probe("readinessProbe")],
          deployment.metadata.name,
        ).toEqual([
          { path: "/healthz", port: "metrics" },
          { path: "/healthz", port: "metrics" },
          { path: "/readyz", port: "metrics" },
        ]);
      }
    });

    it("wires the services to each other by Service name and the gateway to its TLS files", async () => {
      const objects = await render(FEDERATION_TLS);
      const edge = environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-edge-gateway"));
      expect(edge).toMatchObject({
        AUTH_SERVICE_ADDRESS: "alpha-phoenix-auth:50051",
        DELIVERY_SERVICE_ADDRESS: "alpha-phoenix-delivery:50052",
        QUEUE_SERVICE_ADDRESS: "alpha-phoenix-queue:50053",
        HTTP_HOST: "0.0.0.0",
      });
      const gateway = find(objects, "Deployment", "alpha-phoenix-federation-gateway");
      expect(environmentOf(objects, gateway)).toMatchObject({
        FEDERATION_TLS_CERT_FILE: "/etc/phoenix/federation-tls/tls.crt",
        FEDERATION_TLS_KEY_FILE: "/etc/phoenix/federation-tls/tls.key",
        FEDERATION_TLS_CA_FILE: "/etc/phoenix/federation-ca/ca.crt",
        FEDERATION_MTLS: "true",
        FEDERATION_INSECURE_PLAINTEXT: "false",
        FEDERATION_PEERS: "beta.example=10.1.2.3:9443",
        FEDERATION_ALLOWED_DOMAINS: "beta.example,gamma.example",
      });
      const volumes = JSON.stringify(podTemplateOf(gateway)?.spec.volumes);
      expect(volumes).toContain('"secretName":"federation-tls"');
      const auth = environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-auth"));
      expect(auth.FEDERATION_PROXY_ADDRESS).toBe("alpha-phoenix-federation-gateway:50055");
      expect(auth.DATABASE_URL).toBe(
        "postgres://phoenix:p%40ss%20word@pg.internal:5432/phoenix_auth?sslmode=require",
      );
      // The peer's port is open in the gateway's egress policy.
      expect(
        JSON.stringify(find(objects, "NetworkPolicy", "alpha-phoenix-federation-gateway").spec),
      ).toContain('"port":9443');
    });

    it("mounts the push providers' keys into the QS, points its config at them and lets it reach them", async () => {
      const objects = await render(PUSH);
      const qs = find(objects, "Deployment", "alpha-phoenix-queue");
      expect(environmentOf(objects, qs)).toMatchObject({
        QS_PUSH_APNS_KEY_FILE: "/etc/phoenix/push-apns/apns.p8",
        QS_PUSH_APNS_KEY_ID: "KEY1234567",
        QS_PUSH_APNS_TEAM_ID: "TEAM123456",
        QS_PUSH_APNS_TOPIC: "org.phoenix.app",
        QS_PUSH_APNS_ENVIRONMENT: "production",
        QS_PUSH_FCM_SERVICE_ACCOUNT_FILE: "/etc/phoenix/push-fcm/service-account.json",
      });
      const pod = podTemplateOf(qs)?.spec;
      expect(JSON.stringify(pod?.volumes)).toContain('"secretName":"push-keys"');
      expect(JSON.stringify(pod?.containers)).toContain('"mountPath":"/etc/phoenix/push-apns"');
      expect(JSON.stringify(find(objects, "NetworkPolicy", "alpha-phoenix-queue").spec)).toContain(
        '"port":443',
      );
      // Without a provider the QS reaches no push provider.
      const plain = await render(EXTERNAL);
      expect(JSON.stringify(find(plain, "NetworkPolicy", "alpha-phoenix-queue").spec)).not.toContain(
        '"port":443',
      );
      expect(
        JSON.stringify(podTemplateOf(find(plain, "Deployment", "alpha-phoenix-queue"))?.spec),
      ).not.toContain("push-");
    });

    it("without federation the gateway runs plaintext, allows nobody and has no public Service", async () => {
      const objects = await render(EXTERNAL);
      const env = environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-federation-gateway"));
      expect(env).toMatchObject({
        FEDERATION_INSECURE_PLAINTEXT: "true",
        FEDERATION_POLICY: "allowlist",
        FEDERATION_ALLOWED_DOMAINS: "",
      });
      expect(objects.some((o) => o.metadata.name === "alpha-phoenix-federation")).toBe(false);
    });

    it("migrates in a pre-install,pre-upgrade hook with an external database, post-install with the bundled one", async () => {
      const external = await render(EXTERNAL);
      const job = find(external, "Job", "alpha-phoenix-migrate");
      expect(hookOf(job)).toEqual({
        events: ["pre-install", "pre-upgrade"],
        weight: -5,
        deletePolicies: ["before-hook-creation", "hook-succeeded"],
      });
      expect(containerOf(job).args).toEqual(["migrate"]);
      // What it reads exists before the release does: a lower-weight hook Secret of the same events.
      const source = find(external, "Secret", "alpha-phoenix-migrate");
      expect(hookOf(source)?.events).toEqual(["pre-install", "pre-upgrade"]);
      expect(hookOf(source)?.weight).toBeLessThan(-5);
      expect(environmentOf(external, job).QUEUE_DATABASE_URL).toBe(
        secretData(find(external, "Secret", "alpha-phoenix-database")).QUEUE_DATABASE_URL,
      );

      const bundled = await render(BUNDLED);
      const bundledJob = find(bundled, "Job", "alpha-phoenix-migrate");
      expect(hookOf(bundledJob)?.events).toEqual(["post-install", "pre-upgrade"]);
      expect(JSON.stringify(podTemplateOf(bundledJob)?.spec)).toContain('"name":"alpha-phoenix-database"');
      expect(bundled.some((o) => o.kind === "Secret" && o.metadata.name === "alpha-phoenix-migrate")).toBe(
        false,
      );

      const existing = await render(EXISTING);
      expect(JSON.stringify(podTemplateOf(find(existing, "Job", "alpha-phoenix-migrate"))?.spec)).toContain(
        '"name":"phoenix-databases"',
      );
    });

    it("binds the gateway's and the QS's admin listeners to the pod's loopback, each with its own operator keys", async () => {
      const off = await render(EXTERNAL);
      for (const name of ["alpha-phoenix-federation-gateway", "alpha-phoenix-queue"])
        expect(environmentOf(off, find(off, "Deployment", name)).ADMIN_GRPC_PORT, name).toBeUndefined();
      const objects = await render({
        ...EXTERNAL,
        "federation.admin.port": 50071,
        "federation.admin.operatorKeys": [`fed:${"B".repeat(43)}`],
        "queue.admin.port": 50072,
        "queue.admin.operatorKeys": [`qs:${"C".repeat(43)}`],
      });
      expect(
        environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-federation-gateway")),
      ).toMatchObject({
        ADMIN_GRPC_HOST: "127.0.0.1",
        ADMIN_GRPC_PORT: "50071",
        ADMIN_OPERATOR_KEYS: `fed:${"B".repeat(43)}`,
      });
      expect(environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-queue"))).toMatchObject({
        ADMIN_GRPC_HOST: "127.0.0.1",
        ADMIN_GRPC_PORT: "50072",
        ADMIN_OPERATOR_KEYS: `qs:${"C".repeat(43)}`,
      });
      // The AS gets neither key set, and no Service or container port names the listeners.
      expect(
        environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-auth")).ADMIN_OPERATOR_KEYS,
      ).toBeUndefined();
      const ports = JSON.stringify(objects.filter((o) => o.kind === "Service" || o.kind === "Deployment"));
      for (const port of ["50071", "50072"]) expect(ports).not.toContain(port);
    });

    it("binds the AS admin listener to the pod's loopback only when auth.admin.port is set", async () => {
      const off = environmentOf(
        await render(EXTERNAL),
        find(await render(EXTERNAL), "Deployment", "alpha-phoenix-auth"),
      );
      expect(off.ADMIN_GRPC_PORT).toBeUndefined();
      const objects = await render(ADMIN);
      const env = environmentOf(objects, find(objects, "Deployment", "alpha-phoenix-auth"));
      expect(env).toMatchObject({
        ADMIN_GRPC_HOST: "127.0.0.1",
        ADMIN_GRPC_PORT: "50070",
        ADMIN_OPERATOR_KEYS: `ops:${"A".repeat(43)}`,
      });
      // Reached with `kubectl exec` only: no Service or container port names it.
      const ports = JSON.stringify(objects.filter((o) => o.kind === "Service" || o.kind === "Deployment"));
      expect(ports).not.toContain("50070");
    });

    it("keeps no secret in a ConfigMap", async () => {
      for (const set of [EXTERNAL, BUNDLED, FEDERATION_TLS]) {
        const objects = await render(set);
        const secrets = objects
          .filter((o) => o.kind === "Secret")
          .flatMap((s) => Object.values(secretData(s)))
          .filter((v) => v.length >= 8);
        expect(secrets.length).toBeGreaterThan(2);
        const configMaps = JSON.stringify(objects.filter((o) => o.kind === "ConfigMap"));
        for (const value of secrets) expect(configMaps).not.toContain(value);
      }
    });

    it("generates the keys once and keeps them when the upgrade looks the Secrets up", async () => {
      const first = await render(BUNDLED, { lookup: [] });
      const keys = secretData(find(first, "Secret", "alpha-phoenix-keys"));
      const required = [
        "AS_KEY_ENCRYPTION_KEY",
        "QS_STORAGE_KEY",
        "FEDERATION_KEY_ENCRYPTION_KEY",
        "DS_REPLAY_MARKER_KEY",
      ];
      for (const name of required) expect(keys[name], name).toMatch(/^[0-9a-f]{64}$/);
      expect(new Set(required.map((name) => keys[name])).size).toBe(required.length);
      expect(find(first, "Secret", "alpha-phoenix-keys").metadata.annotations).toMatchObject({
        "helm.sh/resource-policy": "keep",
      });
      // The cluster as the first install left it.
      const inCluster = first
        .filter((o) => o.kind === "Secret")
        .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: "chat" } }));
      const upgrade = await render(BUNDLED, { lookup: inCluster, isUpgrade: true, revision: 2 });
      for (const name of ["alpha-phoenix-keys", "alpha-phoenix-database", "alpha-phoenix-nats"]) {
        expect(find(upgrade, "Secret", name).data, name).toEqual(find(first, "Secret", name).data);
      }
      // A rotation the operator started in the Secret (new key, old one as _PREVIOUS) survives upgrades.
      const rotating = inCluster.map((o) =>
        o.metadata.name === "alpha-phoenix-keys"
          ? {
              ...o,
              data: {
                ...((o as KubeObject).data as Record<string, string>),
                FEDERATION_KEY_ENCRYPTION_KEY: Buffer.from("ab".repeat(32)).toString("base64"),
                FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS: Buffer.from(
                  keys.FEDERATION_KEY_ENCRYPTION_KEY ?? "",
                ).toString("base64"),
              },
            }
          : o,
      );
      const rotated = await render(BUNDLED, { lookup: rotating, isUpgrade: true, revision: 3 });
      expect(secretData(find(rotated, "Secret", "alpha-phoenix-keys"))).toMatchObject({
        FEDERATION_KEY_ENCRYPTION_KEY: "ab".repeat(32),
        FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS: keys.FEDERATION_KEY_ENCRYPTION_KEY,
      });
      const gateway = environmentOf(rotated, find(rotated, "Deployment", "alpha-phoenix-federation-gateway"));
      expect(gateway.FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS).toBe(keys.FEDERATION_KEY_ENCRYPTION_KEY);
      // Without the lookup (helm template) they would be new: the test above can fail.
      const fresh = await render(BUNDLED, { lookup: [] });
      expect(secretData(find(fresh, "Secret", "alpha-phoenix-keys")).QS_STORAGE_KEY).not.toBe(
        keys.QS_STORAGE_KEY,
      );
    });

    it("gives every service its own NATS user, with the permissions of the bus layout", async () => {
      const objects = await render(BUNDLED);
      const conf = (find(objects, "ConfigMap", "alpha-phoenix-nats").data as Record<string, string>)[
        "nats.conf"
      ];
      expect(conf).toContain(natsAuthorization(deploymentNatsUsers()).trimEnd());
      const server = environmentOf(objects, find(objects, "StatefulSet", "alpha-phoenix-nats"));
      const users = new Set<string>();
      for (const [component, key] of [
        ["auth", "NATS_AUTH"],
        ["delivery", "NATS_DELIVERY"],
        ["queue", "NATS_QUEUE"],
        ["federation-gateway", "NATS_FEDERATION_GATEWAY"],
      ] as const) {
        const env = environmentOf(objects, find(objects, "Deployment", `alpha-phoenix-${component}`));
        expect(env.NATS_USER, component).toBe(server[`${key}_USER`]);
        expect(env.NATS_PASSWORD, component).toBe(server[`${key}_PASSWORD`]);
        expect(env.NATS_PASSWORD, component).toMatch(/^n[A-Za-z0-9]{31}$/);
        users.add(env.NATS_USER as string);
      }
      expect(users.size).toBe(4);
      // JetStream encrypts its store with a generated key that only the NATS server gets.
      expect(conf).toContain("key: $NATS_JETSTREAM_KEY");
      expect(server.NATS_JETSTREAM_KEY).toMatch(/^k[A-Za-z0-9]{47}$/);
      for (const component of ["auth", "delivery", "queue", "federation-gateway", "edge-gateway"]) {
        const env = environmentOf(objects, find(objects, "Deployment", `alpha-phoenix-${component}`));
        expect(env.NATS_JETSTREAM_KEY, component).toBeUndefined();
      }
      // External NATS with one user per service: each service's own keys of the operator's Secret.
      const external = await render({
        ...EXTERNAL,
        "externalNats.serviceUsers": true,
        "externalNats.existingSecret": "phoenix-nats",
      });
      const queueEnv = (containerOf(find(external, "Deployment", "alpha-phoenix-queue")).env ?? []) as {
        name: string;
        valueFrom?: { secretKeyRef?: { name: string; key: string } };
      }[];
      expect(queueEnv.find((e) => e.name === "NATS_PASSWORD")?.valueFrom?.secretKeyRef).toEqual({
        name: "phoenix-nats",
        key: "NATS_QUEUE_PASSWORD",
      });
      await expect(render({ ...EXTERNAL, "externalNats.serviceUsers": true })).rejects.toThrow(
        /externalNats.serviceUsers needs externalNats.existingSecret/,
      );
    });

    it("lets only the gateways reach the AS, DS and QS", async () => {
      const objects = await render(EXTERNAL);
      for (const component of ["auth", "delivery", "queue"]) {
        const policy = find(objects, "NetworkPolicy", `alpha-phoenix-${component}`);
        const ingress = (
          policy.spec as { ingress: { from?: { podSelector?: { matchLabels: Record<string, string> } }[] }[] }
        ).ingress;
        const grpcFrom = (ingress[0]?.from ?? []).map(
          (peer) => peer.podSelector?.matchLabels["app.kubernetes.io/component"],
        );
        expect(grpcFrom).toEqual(["edge-gateway", "federation-gateway"]);
      }
    });

    it("renders the helm test Pod that exchanges a message through the edge gateway", async () => {
      const objects = await render(EXTERNAL);
      const pod = find(objects, "Pod", "alpha-phoenix-test");
      expect(hookOf(pod)).toMatchObject({
        events: ["test"],
        deletePolicies: ["before-hook-creation", "hook-succeeded"],
      });
      expect(templateOf(pod)).toBe("phoenix/templates/tests/smoke.yaml");
      const env = environmentOf(objects, pod);
      expect(env.PHOENIX_SERVER).toBe("http://alpha-phoenix-edge-gateway:8080");
      const script = JSON.stringify(containerOf(pod).args);
      for (const step of ["register", "handle", "connect", "accept 1", "send Bob", "messages Alice"]) {
        expect(script).toContain(step);
      }
    });

    it("refuses bad values with a message naming the value", async () => {
      const refused = async (set: Set) => {
        try {
          await render(set);
        } catch (error) {
          return error as Error;
        }
        throw new Error(`rendered with ${JSON.stringify(set)}`);
      };
      const missing = await refused({ ...EXTERNAL, domain: "" });
      expect(missing).toBeInstanceOf(ChartRenderError);
      expect(missing.message).toMatch(/domain is required: the homeserver's DNS name/);

      const cases: [Set, string, RegExp][] = [
        [{ ...EXTERNAL, domain: "Chat_Example" }, "domain", /does not match the pattern/],
        [{ ...EXTERNAL, "image.tag": "latest" }, "image.tag", /must not be "latest"/],
        [
          { ...EXTERNAL, "federation.policy": "everyone" },
          "federation.policy",
          /must be one of "allowlist", "open"/,
        ],
        [{ ...EXTERNAL, "secrets.qsStorageKey": "abcd" }, "secrets.qsStorageKey", /64 hex characters/],
        [{ ...EXTERNAL, "auth.replicaCount": -1 }, "auth.replicaCount", /must be >= 0/],
        [{ ...EXTERNAL, "federation.service.port": 70000 }, "federation.service.port", /must be <= 65535/],
        [{ ...EXTERNAL, "nats.streamReplicas": 2 }, "nats.streamReplicas", /must be one of 1, 3/],
        [{ ...EXTERNAL, "auth.replicacount": 2 }, "auth.replicacount", /not a value of this chart/],
      ];
      for (const [set, path, message] of cases) {
        const error = await refused(set);
        expect(error, path).toBeInstanceOf(ChartValuesError);
        const problem = (error as ChartValuesError).problems.find((p) => p.path === path);
        expect(problem?.message, `${path}: ${error.message}`).toMatch(message);
        expect(error.message).toContain("values don't meet the specifications of the schema(s)");
      }

      // Rules across several values, from the templates.
      expect((await refused({ ...EXTERNAL, "federation.enabled": true })).message).toMatch(
        /federation.enabled needs a TLS certificate/,
      );
      expect((await refused({ ...EXTERNAL, "auth.config.AS_ROOT_SIGNING_KEY": "x" })).message).toMatch(
        /auth.config.AS_ROOT_SIGNING_KEY looks like a secret/,
      );
      expect((await refused({ ...BUNDLED, "nats.streamReplicas": 3 })).message).toMatch(
        /must be 1 with the bundled NATS/,
      );
      expect((await refused({ domain: "x.example" })).message).toMatch(/externalDatabase.host is required/);
      expect((await refused({ ...EXISTING, "auth.inviteCodes": ["welcome"] })).message).toMatch(
        /secrets.existingSecret is set: put AS_INVITE_CODES/,
      );
      expect((await refused({ ...EXTERNAL, "auth.terminationGracePeriodSeconds": 10 })).message).toMatch(
        /auth.terminationGracePeriodSeconds \(10 s\) must exceed/,
      );
    });

    it("the lint and the validation catch a broken object", async () => {
      const objects = await render(EXTERNAL);
      const broken = structuredClone(find(objects, "Deployment", "alpha-phoenix-auth"));
      const container = containerOf(broken);
      delete container.readinessProbe;
      container.image = "phoenix-homeserver:latest";
      container.resources = { requests: { cpu: "100m" } };
      container.securityContext = { readOnlyRootFilesystem: false, runAsUser: 0 };
      container.env = [{ name: "X", valueFrom: { secretKeyRef: { name: "nowhere", key: "X" } } }];
      const leak: KubeObject = {
        ...structuredClone(find(objects, "ConfigMap", "alpha-phoenix-auth")),
        data: { AS_KEY_ENCRYPTION_KEY: "00".repeat(32), NATS_URL: "nats://u:pw@n:4222" },
      };
      const orphan: KubeObject = {
        ...structuredClone(find(objects, "Service", "alpha-phoenix-auth")),
        spec: { selector: { "app.kubernetes.io/component": "nothing" }, ports: [{ name: "grpc", port: 1 }] },
      };
      const others = objects.filter(
        (o) => o.kind !== "Deployment" || o.metadata.name !== "alpha-phoenix-auth",
      );
      const problems = lintObjects([...others, broken, leak, orphan]).map(
        (p) => `${p.object} ${p.path}: ${p.message}`,
      );
      const path = "spec.template.spec.containers[0]";
      expect(problems).toEqual(
        expect.arrayContaining([
          `Deployment/alpha-phoenix-auth ${path}.readinessProbe: missing`,
          `Deployment/alpha-phoenix-auth ${path}.image: "phoenix-homeserver:latest" uses the tag latest`,
          `Deployment/alpha-phoenix-auth ${path}.resources.limits.memory: missing`,
          `Deployment/alpha-phoenix-auth ${path}.securityContext.readOnlyRootFilesystem: must be true`,
          `Deployment/alpha-phoenix-auth ${path}.securityContext.runAsUser: must not be 0 (root)`,
          `Deployment/alpha-phoenix-auth ${path}.securityContext.capabilities.drop: must include ALL`,
          `Deployment/alpha-phoenix-auth ${path}.env[0].valueFrom.secretKeyRef: Secret nowhere is neither rendered nor declared external`,
          "ConfigMap/alpha-phoenix-auth data.AS_KEY_ENCRYPTION_KEY: looks like a secret: belongs in a Secret",
          "ConfigMap/alpha-phoenix-auth data.NATS_URL: holds a URL with a password: belongs in a Secret",
          `Service/alpha-phoenix-auth spec.selector: selects no pod template of the render ({"app.kubernetes.io/component":"nothing"})`,
        ]),
      );
      // A pre-install hook that reads a release Secret would fail on the first install.
      const job = structuredClone(find(objects, "Job", "alpha-phoenix-migrate"));
      const jobEnv = containerOf(job).env as { valueFrom?: { secretKeyRef?: { name: string } } }[];
      for (const entry of jobEnv) {
        if (entry.valueFrom?.secretKeyRef) entry.valueFrom.secretKeyRef.name = "alpha-phoenix-database";
      }
      const hookProblems = lintObjects([...objects.filter((o) => o.kind !== "Job"), job]);
      expect(hookProblems.map((p) => p.message)).toContain(
        "pre-install hook reads Secret alpha-phoenix-database, which does not exist yet then (make it a lower-weight pre-install hook or external)",
      );

      const invalid = structuredClone(find(objects, "Service", "alpha-phoenix-auth"));
      (invalid.spec as { ports: { port: unknown }[] }).ports[0] = { port: "fifty" };
      invalid.metadata.name = "Alpha_Auth";
      const validation = await validateObjects([invalid, { ...invalid, apiVersion: "v2" }]);
      expect(validation).toEqual(
        expect.arrayContaining([
          { object: "Service/Alpha_Auth", path: "spec.ports[0].port", message: "must be integer" },
          expect.objectContaining({ object: "Service/Alpha_Auth", path: "metadata.name" }),
          expect.objectContaining({
            path: "apiVersion",
            message: "no schema for v2 Service (unknown or removed API)",
          }),
        ]),
      );
    });

    it("prints NOTES for the operator", async () => {
      const release = await renderChartRelease({
        chartDir: CHART,
        releaseName: "alpha",
        namespace: "chat",
        set: EXTERNAL,
      });
      if (release.engine === "helm") return; // helm template does not render NOTES.txt
      expect(release.notes).toContain("helm test alpha -n chat");
      expect(release.notes).toContain("BACK THEM UP");
    });

    it("has a README whose parameter table matches values.yaml (npm run chart:readme)", async () => {
      const dir = await mkdtemp(join(tmpdir(), "phoenix-readme-"));
      try {
        const copy = join(dir, "README.md");
        await copyFile(join(CHART, "README.md"), copy);
        const generator = join(ROOT, "node_modules/@bitnami/readme-generator-for-helm/bin/index.js");
        await promisify(execFile)(process.execPath, [
          generator,
          "--values",
          join(CHART, "values.yaml"),
          "--readme",
          copy,
        ]);
        expect(
          await readFile(copy, "utf8"),
          "k8s/charts/phoenix/README.md is stale: npm run chart:readme",
        ).toBe(await readFile(join(CHART, "README.md"), "utf8"));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  /**
   * The renderer itself (k8s/tools/helm-render when there is no helm): Helm's semantics on a small
   * fixture chart. With helm on PATH the same assertions hold for helm.
   */
  describe("chart rendering semantics (helm template or helm-render)", () => {
    let dir = "";
    const fixture = () => join(dir, "fixture");
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "phoenix-chart-fixture-"));
      const files: Record<string, string> = {
        "fixture/Chart.yaml":
          'apiVersion: v2\nname: fixture\nversion: 0.1.0\nappVersion: "9.9"\nkubeVersion: ">=1.20.0-0"\n',
        "fixture/values.yaml": "a:\n  keep: 1\n  drop: 2\nlist: [1, 2]\nname: base\nport: 8080\n",
        "fixture/files/hello.txt": "hello\n",
        "fixture/templates/_helpers.tpl": '{{- define "fixture.greet" -}}hello {{ . }}{{- end }}\n',
        "fixture/templates/NOTES.txt": "notes for {{ .Release.Name }}\n",
        "fixture/templates/cm.yaml": [
          "apiVersion: v1",
          "kind: ConfigMap",
          "metadata:",
          "  name: {{ .Release.Name }}-cm",
          "data:",
          "  values: {{ toJson .Values | quote }}",
          '  greet: {{ include "fixture.greet" .Values.name | quote }}',
          '  tpl: {{ tpl "{{ .Values.name }}-{{ .Release.Name }}" . | quote }}',
          '  chart: {{ printf "%s-%s-%s" .Chart.Name .Chart.Version .Chart.AppVersion | quote }}',
          '  release: {{ printf "%v-%v-%v-%v" .Release.IsInstall .Release.IsUpgrade .Release.Namespace .Release.Service | quote }}',
          "  template: {{ .Template.Name | quote }}",
          "  basePath: {{ .Template.BasePath | quote }}",
          '  file: {{ .Files.Get "files/hello.txt" | trim | quote }}',
          '  caps: {{ .Capabilities.APIVersions.Has "apps/v1" | quote }}',
          "  port: {{ .Values.port | quote }}",
          '  yaml: {{ dict "b" 2 "a" (list 1 "x") | toYaml | fromYaml | toJson | quote }}',
          '  lookup: {{ (lookup "v1" "ConfigMap" .Release.Namespace "existing").data | default dict | toJson | quote }}',
          "---",
          "# only a comment",
          "---",
          "{{- if .Values.missing }}",
          "apiVersion: v1",
          "kind: Secret",
          "{{- end }}",
          "",
        ].join("\n"),
        "fixture/templates/required.yaml":
          '{{- if .Values.needIt }}{{ required "needIt.value is required" .Values.needIt.value }}{{ end }}\n',
        "fixture/templates/tests/t.yaml":
          'apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers: [{name: t, image: "x:1"}]\n',
        "override.yaml": "a:\n  drop: null\nname: file\n",
        "env/Chart.yaml": "apiVersion: v2\nname: env\nversion: 0.1.0\n",
        "env/templates/cm.yaml": '{{ env "HOME" }}\n',
      };
      for (const [path, text] of Object.entries(files)) {
        await mkdir(join(dir, path, ".."), { recursive: true });
        await writeFile(join(dir, path), text);
      }
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it("coalesces values like Helm, renders the built-in objects and drops empty documents", async () => {
      const release = await renderChartRelease({
        chartDir: fixture(),
        releaseName: "fx",
        namespace: "ns1",
        valuesFiles: [join(dir, "override.yaml")],
        set: { name: "set", list: [3, 4], "extra.n": 5 },
        isUpgrade: true,
      });
      expect(release.objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
        "ConfigMap/fx-cm",
        "Pod/t",
      ]);
      const data = release.objects[0]?.data as Record<string, string>;
      // -f deletes a.drop with null, --set wins over -f, lists replace, --set integers are numbers.
      expect(JSON.parse(data.values as string)).toEqual({
        a: { keep: 1 },
        list: [3, 4],
        name: "set",
        port: 8080,
        extra: { n: 5 },
      });
      expect(data).toMatchObject({
        greet: "hello set",
        tpl: "set-fx",
        chart: "fixture-0.1.0-9.9",
        release: "false-true-ns1-Helm",
        template: "fixture/templates/cm.yaml",
        basePath: "fixture/templates",
        file: "hello",
        caps: "true",
        port: "8080",
        yaml: '{"a":[1,"x"],"b":2}',
        lookup: "{}",
      });
      expect(templateOf(release.objects[1] as KubeObject)).toBe("fixture/templates/tests/t.yaml");
      expect(hookOf(release.objects[1] as KubeObject)?.events).toEqual(["test"]);
      if (release.engine === "go") expect(release.notes).toBe("notes for fx\n");
    });

    it("answers lookup from existing objects (helm-render)", async () => {
      const existing: KubeObject = {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "existing", namespace: "ns1" },
        data: { kept: "yes" },
      };
      const elsewhere = {
        ...existing,
        metadata: { name: "existing", namespace: "other" },
        data: { kept: "no" },
      };
      const [cm] = await renderChart({
        chartDir: fixture(),
        releaseName: "fx",
        namespace: "ns1",
        lookup: [elsewhere, existing],
      });
      expect(cm?.data).toMatchObject({ lookup: '{"kept":"yes"}' });
    });

    it("fails like Helm: required, a removed function, the kube version", async () => {
      await expect(
        renderChart({ chartDir: fixture(), releaseName: "fx", set: { "needIt.other": 1 } }),
      ).rejects.toThrow(
        /execution error at \(fixture\/templates\/required\.yaml:1:\d+\): needIt\.value is required/,
      );
      await expect(renderChart({ chartDir: join(dir, "env"), releaseName: "fx" })).rejects.toThrow(
        /function "env" not defined/,
      );
      await expect(
        renderChart({ chartDir: fixture(), releaseName: "fx", kubeVersion: "v1.19.0" }),
      ).rejects.toThrow(
        /chart requires kubeVersion: >=1.20.0-0 which is incompatible with Kubernetes v1.19.0/,
      );
      await expect(renderChart({ chartDir: fixture(), releaseName: "Bad_Name" })).rejects.toThrow(
        /invalid release name/,
      );
    });
  });
}
