// The helm-based multi-domain federation test: the chart rendered for three domains and run as
// Kubernetes would run it (libs/test-harness kube stand-in on podman), then the phoenix CLI in
// containers drives users of all three domains through their own edge gateways; then an upgrade
// rolls one domain's pods while messages are sent, and an uninstall leaves nothing running.
//
// Needs root, podman and the images of deploy/image/build.sh (`npm run test:helm` builds them).
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import {
  type KubeObject,
  PodmanNamespace,
  parseManifests,
  podman,
  podmanWorks,
  renderChart,
} from "@phoenix/test-harness/kube";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const CHART = join(HERE, "../charts/phoenix");
const IMAGE_REPOSITORY = "localhost/phoenix-homeserver";
const IMAGE = process.env.PHOENIX_IMAGE ?? `${IMAGE_REPOSITORY}:ci`;
const UPGRADE_TAG = "ci-next";
const RUN = randomBytes(3).toString("hex");
const FEDERATION_NETWORK = `phx-federation-${RUN}`;
/** Every pod's output, written when the pod is deleted (kept after the run for reading). */
const LOG_DIR = join(tmpdir(), `phoenix-helm-logs-${RUN}`);

interface Domain {
  name: string;
  release: string;
  /** Values file in k8s/test besides values-test.yaml. */
  values: string;
  /** Postgres and NATS run by "the operator" beside the release (external), else bundled. */
  external: boolean;
  ns?: PodmanNamespace;
  objects?: KubeObject[];
}

const domains: Domain[] = [
  { name: "alpha.test", release: "alpha", values: "values-alpha.yaml", external: true },
  { name: "beta.test", release: "beta", values: "values-beta.yaml", external: true },
  { name: "gamma.test", release: "gamma", values: "values-gamma.yaml", external: false },
];
const byName = (name: string) => domains.find((d) => d.name === name) as Domain;

const canRun = process.getuid?.() === 0 && (await podmanWorks());
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/**
 * `helm template`/`helm upgrade` of one domain's release. An upgrade's `lookup` sees the objects
 * of the install (as Helm's would in the cluster), so generated keys and passwords are kept.
 */
function render(
  domain: Domain,
  set: Record<string, string> = {},
  installed?: KubeObject[],
): Promise<KubeObject[]> {
  return renderChart({
    chartDir: CHART,
    releaseName: domain.release,
    namespace: namespaceOf(domain),
    valuesFiles: [join(HERE, "values-test.yaml"), join(HERE, domain.values)],
    set: { "image.repository": IMAGE_REPOSITORY, "image.tag": IMAGE.split(":").pop() as string, ...set },
    isUpgrade: installed !== undefined,
    ...(installed
      ? {
          // The Secrets as the install left them in the release's namespace.
          lookup: installed
            .filter((object) => object.kind === "Secret")
            .map((object) => ({
              ...object,
              metadata: { ...object.metadata, namespace: namespaceOf(domain) },
            })),
        }
      : {}),
  });
}

function namespaceOf(domain: Domain): string {
  return `${domain.release}-${RUN}`;
}

/** The TLS Secret an operator creates for the federation gateway (`federation.tls.existingSecret`). */
function tlsSecret(tls: TestTlsFiles, domain: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "federation-tls" },
    type: "kubernetes.io/tls",
    stringData: {
      "tls.crt": readFileSync(tls.certFile(domain), "utf8"),
      "tls.key": readFileSync(tls.keyFile(domain), "utf8"),
      "ca.crt": readFileSync(tls.caFile, "utf8"),
    },
  };
}

/** A user of the phoenix CLI: its store in a volume, every command a container in its domain. */
class CliUser {
  readonly volume: string;
  id = "";

  constructor(
    readonly name: string,
    readonly domain: Domain,
  ) {
    this.volume = `phx-cli-${RUN}-${name}`;
  }

  get server(): string {
    return `http://${this.domain.release}-phoenix-edge-gateway:8080`;
  }

  /** Runs one command; its result whatever the exit code. */
  attempt(...args: string[]) {
    const ns = this.domain.ns as PodmanNamespace;
    return ns.run({
      image: IMAGE,
      args: ["phoenix", "--server", this.server, "--store", "/data/client.sqlite", ...args],
      volumes: [`${this.volume}:/data:U`],
      allowFailure: true,
      timeoutMs: 120_000,
    });
  }

  /** Runs one command that must succeed; its output. */
  async ok(...args: string[]): Promise<string> {
    const run = await this.attempt(...args);
    if (run.code !== 0) {
      throw new Error(`${this.name}: phoenix ${args.join(" ")} exited ${run.code}: ${run.stderr.trim()}`);
    }
    return run.stdout;
  }

  /** Repeats a read command until its output satisfies `test` (bounded). */
  async until(test: (output: string) => boolean, what: string, ...args: string[]): Promise<string> {
    let last = "";
    for (let i = 0; i < 30; i++) {
      last = await this.ok(...args);
      if (test(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error(`${this.name}: phoenix ${args.join(" ")} never showed ${what}; last output:\n${last}`);
  }

  async members(conversation: string): Promise<string[]> {
    return (await this.ok("members", conversation))
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(/\s+/)[0] as string);
  }

  /** Message texts of a conversation (`sender: text` without the time), in order. */
  async texts(conversation: string): Promise<string[]> {
    return (await this.ok("messages", conversation))
      .split("\n")
      .filter((line) => line.startsWith("["))
      .map((line) => line.replace(/^\[[^\]]*\]\s*/, ""));
  }
}

describe.skipIf(!canRun)("the chart on three federating domains (podman stand-in for Kubernetes)", () => {
  let tls: TestTlsFiles;
  const users: CliUser[] = [];
  let volumesAtStart: string[] = [];

  beforeAll(async () => {
    for (const image of [IMAGE, "localhost/phoenix-test-postgres:15", "localhost/phoenix-test-nats:2.9"]) {
      const exists = await podman(["image", "exists", image], { allowFailure: true });
      if (exists.code !== 0) throw new Error(`image ${image} is missing: run deploy/image/build.sh first`);
    }
    volumesAtStart = (await podman(["volume", "ls", "-q"])).stdout.split("\n").filter(Boolean);
    // The upgrade's "new version": the same build under another tag (no registry here).
    await podman(["tag", IMAGE, `${IMAGE_REPOSITORY}:${UPGRADE_TAG}`]);
    tls = makeTestTls(domains.map((d) => d.name));
    await podman(["network", "create", FEDERATION_NETWORK]);
    const infra = parseManifests(readFileSync(join(HERE, "operator-infra.yaml"), "utf8"));
    await Promise.all(
      domains.map(async (domain) => {
        domain.ns = await PodmanNamespace.create({
          namespace: namespaceOf(domain),
          agentImage: IMAGE,
          workDir: join(tmpdir(), `phoenix-kube-${RUN}`, domain.release),
          log,
          logDir: join(LOG_DIR, domain.release),
          // The gateways' egress beyond the cluster: the network the three domains share.
          extraNetworks: [
            {
              selector: { "app.kubernetes.io/component": "federation-gateway" },
              network: FEDERATION_NETWORK,
            },
          ],
        });
        domain.ns.applyConfig([tlsSecret(tls, domain.name)]);
        if (domain.external) await domain.ns.install("operator-infra", infra);
      }),
    );
  }, 600_000);

  afterAll(async () => {
    for (const user of users) await podman(["volume", "rm", "-f", user.volume], { allowFailure: true });
    for (const domain of domains) await domain.ns?.delete();
    await podman(["network", "rm", "-f", FEDERATION_NETWORK], { allowFailure: true });
    await podman(["rmi", `${IMAGE_REPOSITORY}:${UPGRADE_TAG}`], { allowFailure: true });
    tls?.remove();
  }, 300_000);

  it("installs three releases: hooks first, every pod ready, gateways published under their domains", async () => {
    await Promise.all(
      domains.map(async (domain) => {
        const ns = domain.ns as PodmanNamespace;
        domain.objects = await render(domain);
        const started = Date.now();
        await ns.install(domain.release, domain.objects);
        log(`${domain.release} installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
        // What a LoadBalancer Service and the domain's DNS record do: the public federation
        // Service answers as federation.<domain> (the gateways' discovery fallback) to the others.
        await ns.exposeService(`${domain.release}-phoenix-federation`, FEDERATION_NETWORK, [
          `federation.${domain.name}`,
        ]);
      }),
    );
    for (const domain of domains) {
      const names = await (domain.ns as PodmanNamespace).containers();
      for (const component of ["auth", "delivery", "queue", "federation-gateway", "edge-gateway"]) {
        expect(names.some((n) => n.includes(`${domain.release}-phoenix-${component}-`))).toBe(true);
      }
    }
  }, 900_000);

  it("passes the chart's own helm test on every release", async () => {
    for (const domain of domains) {
      const outputs = await (domain.ns as PodmanNamespace).test(domain.objects as KubeObject[]);
      expect(outputs.length).toBeGreaterThan(0);
      log(`${domain.release} helm test: ${outputs.join(" | ").slice(-200)}`);
    }
  }, 600_000);

  it("users of three domains connect, share a group, chat, remove and leave, and their views agree", async () => {
    const alice = new CliUser("alice", byName("alpha.test"));
    const bob = new CliUser("bob", byName("beta.test"));
    const carol = new CliUser("carol", byName("gamma.test"));
    users.push(alice, bob, carol);
    for (const user of users) {
      const out = await user.ok("register", "--name", user.name, "--domain", user.domain.name);
      user.id = /^registered (\S+)/.exec(out)?.[1] as string;
      expect(user.id.endsWith(`@${user.domain.name}`)).toBe(true);
    }

    // Connections across domains, each through the requester's own homeserver only.
    const connect = async (from: CliUser, to: CliUser) => {
      expect(await from.ok("connect", to.id)).toContain("connection request sent");
      // `#1  from Alice (<user id>)  pending`, or `from <user id> (no profile yet)`.
      const line = new RegExp(`#(\\d+)\\s+from .*${from.id.replaceAll(".", "\\.")}`);
      const requests = await to.until((o) => line.test(o), "the request", "requests");
      const id = line.exec(requests)?.[1] as string;
      expect(await to.ok("accept", id)).toContain("accepted");
      await from.until((o) => o.includes(to.id), `${to.name} as a contact`, "contacts");
    };
    await connect(alice, bob);
    await connect(alice, carol);
    await connect(bob, carol);

    // A group with members of three domains, hosted by alpha's DS.
    expect(await alice.ok("create", "trio")).toContain("created");
    expect(await alice.ok("invite", "trio", bob.id, carol.id)).toContain("invited");
    for (const user of [bob, carol])
      await user.until((o) => o.includes("trio"), "the group", "conversations");
    await alice.ok("send", "trio", "hello from alpha");
    await bob.ok("send", "trio", "hello from beta");
    await carol.ok("send", "trio", "hello from gamma");
    const all = [alice.id, bob.id, carol.id].sort();
    for (const user of [alice, bob, carol]) {
      await user.until(
        (o) => ["hello from alpha", "hello from beta", "hello from gamma"].every((t) => o.includes(t)),
        "all three messages",
        "messages",
        "trio",
      );
      expect(await user.members("trio")).toEqual(all);
    }

    // Alpha removes gamma's member; beta's member leaves (committed by alpha's next action).
    await alice.ok("remove", "trio", carol.id);
    await bob.until((o) => !o.includes(carol.id), "carol removed", "members", "trio");
    expect(await alice.members("trio")).toEqual([alice.id, bob.id].sort());
    expect(await bob.members("trio")).toEqual([alice.id, bob.id].sort());
    await carol.until((o) => /trio.*\(inactive\)/.test(o), "the group inactive", "conversations");
    await bob.ok("leave", "trio");
    await alice.until((o) => o.trim() === alice.id.concat("  me"), "only alice left", "members", "trio");
    await bob.until((o) => /trio.*\(inactive\)/.test(o), "the group inactive", "conversations");
  }, 900_000);

  it("rolls alpha to a new version one pod at a time; every message acknowledged meanwhile arrives once", async () => {
    const [alice, bob, carol] = users as [CliUser, CliUser, CliUser];
    const alpha = byName("alpha.test");
    expect(await alice.ok("create", "roll")).toContain("created");
    await alice.ok("invite", "roll", bob.id, carol.id);
    for (const user of [bob, carol])
      await user.until((o) => o.includes("roll"), "the group", "conversations");

    const installed = alpha.objects as KubeObject[];
    const upgraded = await render(alpha, { "image.tag": UPGRADE_TAG, logLevel: "debug" }, installed);
    // Generated secrets survive the upgrade; a new AS key would make the AS's keys unreadable.
    const keys = (objects: KubeObject[]) =>
      objects.find((o) => o.kind === "Secret" && o.metadata.name === "alpha-phoenix-keys");
    expect(keys(upgraded)?.data).toEqual(keys(installed)?.data);
    const acknowledged: string[] = [];
    const refused: string[] = [];
    let rolling = true;
    const sender = (async () => {
      // Sends until the roll is over (bounded: 200 messages); a failed send is not acknowledged.
      for (let i = 1; rolling && i <= 200; i++) {
        const text = `during the roll ${i}`;
        const run = await alice.attempt("send", "roll", text);
        (run.code === 0 ? acknowledged : refused).push(text);
      }
    })();
    const started = Date.now();
    try {
      await (alpha.ns as PodmanNamespace).upgrade(alpha.release, upgraded);
    } finally {
      rolling = false;
      await sender;
    }
    log(
      `alpha rolled in ${((Date.now() - started) / 1000).toFixed(0)} s; sent ${acknowledged.length} acknowledged, ${refused.length} refused`,
    );
    alpha.objects = upgraded;
    expect(acknowledged.length).toBeGreaterThan(0);
    const after = "after the roll";
    await alice.ok("send", "roll", after);
    for (const user of [bob, carol]) {
      await user.until((o) => o.includes(`${after}`), "the last message", "messages", "roll");
      const texts = await user.texts("roll");
      for (const text of acknowledged) {
        expect(
          texts.filter((t) => t.endsWith(`: ${text}`)),
          `${user.name}: "${text}"`,
        ).toHaveLength(1);
      }
      for (const text of refused)
        expect(texts.filter((t) => t.endsWith(`: ${text}`)).length).toBeLessThanOrEqual(1);
      // In the order alice sent them.
      const seen = texts.filter((t) => t.includes("during the roll")).map((t) => Number(t.split(" ").pop()));
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
    }
    // Every pod of alpha now runs the new image.
    const images = await podman([
      "ps",
      "--format",
      "{{.Image}}",
      "--filter",
      `label=app.kubernetes.io/instance=${alpha.release}`,
    ]);
    const running = images.stdout.split("\n").filter(Boolean);
    expect(running.length).toBeGreaterThanOrEqual(5);
    expect(running.every((image) => image.endsWith(`:${UPGRADE_TAG}`))).toBe(true);
  }, 900_000);

  it("uninstalls every release and leaves no container behind", async () => {
    for (const domain of domains) {
      const ns = domain.ns as PodmanNamespace;
      await ns.uninstall(domain.release);
      if (domain.external) await ns.uninstall("operator-infra");
      expect(await ns.containers()).toEqual([]);
    }
    // Only the claim volumes of the StatefulSets stay (as PVCs do), and the CLI users' stores.
    const left = (await podman(["volume", "ls", "-q"])).stdout.split("\n").filter(Boolean);
    const expected = (name: string) =>
      /-data-(postgres|nats|\S+-postgresql|\S+-nats)-0$/.test(name) || name.startsWith(`phx-cli-${RUN}-`);
    expect(left.filter((name) => !volumesAtStart.includes(name) && !expected(name))).toEqual([]);
  }, 300_000);
});
