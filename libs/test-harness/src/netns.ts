// Two Linux network namespaces linked to each other by a veth pair, for running homeservers and
// their clients on separate "hosts" that find each other by name (root only).
//
// Network safety: the test process lives in the root namespace and must never send traffic to a
// namespace's 10.231.x address. So the root namespace gets a blackhole route for 10.231.0.0/16
// BEFORE anything else, the veth pair is created directly inside the two namespaces (it never
// appears in the root namespace), and every process that talks to those addresses runs inside a
// namespace (`ip netns exec`). Names are unique per run; the addresses are the same for every run,
// which is fine because each pair of namespaces only sees its own link. This module is the only
// user of 10.231.0.0/16.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The subnet reserved for these tests (blackholed in the root namespace while they run). */
export const NETNS_SUBNET = "10.231.0.0/16";

/** Setting up or tearing down namespaces failed. */
export class NetnsError extends Error {
  override readonly name = "NetnsError";
}

/** Why namespaces cannot be used here (`undefined`: they can). */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root (run the test as root)";
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore", timeout: 10_000 });
  } catch {
    return "the `ip` command (iproute2) is missing";
  }
  const probe = `phxprobe${randomBytes(3).toString("hex")}`;
  try {
    ip(["netns", "add", probe]);
  } catch (error) {
    return `cannot create a network namespace: ${(error as Error).message}`;
  } finally {
    try {
      ip(["netns", "del", probe]);
    } catch {
      // it was never created
    }
  }
  return undefined;
}

/** One namespace of a {@link LinkedNamespaces} pair. */
export interface Namespace {
  /** The namespace name (`ip netns exec <name> …`). */
  readonly name: string;
  /** Its veth address (10.231.0.1 or .2). */
  readonly address: string;
}

/** Hosts entries of one namespace: name → address (written to `/etc/netns/<ns>/hosts`). */
export type HostsEntries = Readonly<Record<string, string>>;

/** Two namespaces linked by a veth pair; `remove()` deletes them, their hosts files and the route. */
export interface LinkedNamespaces {
  readonly a: Namespace;
  readonly b: Namespace;
  /** Writes `/etc/netns/<ns>/hosts` (localhost plus `entries`); `ip netns exec` mounts it as /etc/hosts. */
  writeHosts(ns: Namespace, entries: HostsEntries): void;
  /** Deletes both namespaces (the veth pair goes with them), the hosts files and the route we added. */
  remove(): void;
}

function ip(args: readonly string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new NetnsError(`ip ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`);
  }
}

/**
 * Creates two namespaces `phx<tag>a` / `phx<tag>b` linked directly by a veth pair
 * (10.231.0.1/30 ↔ 10.231.0.2/30), loopback up in both. The blackhole route for
 * {@link NETNS_SUBNET} is added to the root namespace first. On any failure everything created so
 * far is removed again.
 */
export function createLinkedNamespaces(): LinkedNamespaces {
  const tag = randomBytes(3).toString("hex");
  const a: Namespace = { name: `phx${tag}a`, address: "10.231.0.1" };
  const b: Namespace = { name: `phx${tag}b`, address: "10.231.0.2" };
  let routeAdded = false;
  const created: Namespace[] = [];
  const remove = () => {
    const errors: string[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (error) {
        errors.push((error as Error).message);
      }
    };
    for (const ns of [a, b])
      attempt(() => rmSync(join("/etc/netns", ns.name), { recursive: true, force: true }));
    // Deleting a namespace deletes its end of the veth pair, and with it the other end.
    for (const ns of created.splice(0)) attempt(() => ip(["netns", "del", ns.name]));
    // The route goes last: nothing may reach 10.231/16 from the root namespace while a link exists.
    if (routeAdded) attempt(() => ip(["route", "del", "blackhole", NETNS_SUBNET]));
    routeAdded = false;
    if (errors.length > 0) throw new NetnsError(`namespace teardown: ${errors.join("; ")}`);
  };
  try {
    // 1. Root namespace: nothing for 10.231/16 may leave it, whatever happens below. A route that
    // exists already (a crashed earlier run) is kept and left in place.
    try {
      ip(["route", "add", "blackhole", NETNS_SUBNET]);
      routeAdded = true;
    } catch (error) {
      if (!ip(["route", "show", NETNS_SUBNET]).includes("blackhole")) throw error;
    }
    // 2. The namespaces, and the veth pair created with one end in each.
    for (const ns of [a, b]) {
      ip(["netns", "add", ns.name]);
      created.push(ns);
    }
    ip(["link", "add", a.name, "netns", a.name, "type", "veth", "peer", "name", b.name, "netns", b.name]);
    for (const ns of [a, b]) {
      const exec = ["netns", "exec", ns.name, "ip"];
      ip([...exec, "link", "set", "lo", "up"]);
      ip([...exec, "addr", "add", `${ns.address}/30`, "dev", ns.name]);
      ip([...exec, "link", "set", ns.name, "up"]);
    }
  } catch (error) {
    try {
      remove();
    } catch {
      // the setup failure is the one to report
    }
    throw error;
  }
  return {
    a,
    b,
    writeHosts(ns, entries) {
      const dir = join("/etc/netns", ns.name);
      mkdirSync(dir, { recursive: true });
      const lines = [
        "127.0.0.1 localhost",
        "::1 localhost",
        ...Object.entries(entries).map(([host, address]) => `${address} ${host}`),
      ];
      writeFileSync(join(dir, "hosts"), `${lines.join("\n")}\n`);
    },
    remove,
  };
}

/** Whether a namespace of this name exists (teardown checks). */
export function namespaceExists(name: string): boolean {
  return ip(["netns", "list"])
    .split("\n")
    .some((line) => line.split(" ")[0] === name);
}

/** Whether `/etc/netns/<name>` exists (teardown checks). */
export function hostsDirExists(name: string): boolean {
  return existsSync(join("/etc/netns", name));
}

/** The output of a finished command. */
export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The command prefix that runs a command inside `ns`, e.g. as `commandPrefix` of a
 * `ServiceProcess`: `ip netns exec` execs the command, so its pid and signals are the command's.
 */
export function inNamespace(ns: Namespace): readonly string[] {
  return ["ip", "netns", "exec", ns.name];
}

/** Runs `argv` inside namespace `ns` and waits for it (killed after `timeoutMs`). */
export function runInNamespace(
  ns: Namespace,
  argv: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      "ip",
      ["netns", "exec", ns.name, ...argv],
      {
        cwd: options.cwd,
        env: options.env,
        timeout: options.timeoutMs,
        killSignal: "SIGKILL",
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
