// Loopback ports for tests that must know a service's port before it starts (peers that name each
// other, a gateway's upstreams, a fixed HTTP port).
//
// Picking a port by binding 0 and closing it races with everything else on the machine: between
// the close and the service's own bind, the kernel may hand the same port to another process's
// listener or to an outgoing connection (every Postgres, NATS and gRPC client socket takes one),
// and the service fails with EADDRINUSE. So ports are taken from below the kernel's ephemeral
// range, which it never hands out on its own, in a slice of that band reserved for this test
// worker (vitest's pool id), in order, each checked free by a bind before it is returned. Two
// workers never share a slice, and a worker does not return a port twice until its slice wraps.
import { readFileSync } from "node:fs";
import net from "node:net";
import { eventually } from "./eventually.js";

/** Where Debian's nats-server lives; tests that start a private server skip without it. */
export const NATS_SERVER_BINARY = "/usr/sbin/nats-server";

/** The lowest port handed out: above the well-known local services (Postgres, NATS, Redis …). */
const BAND_START = 10_000;
/** Slices of the band: one per vitest worker id modulo this. */
const SLICES = 16;

/** `count` distinct loopback ports, free when returned and not handed out by the kernel. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tried = 0; ports.length < count; tried++) {
    if (tried >= allocator().size)
      throw new Error(`no ${count} free loopback ports in ${allocator().describe}`);
    const port = allocator().next();
    if (await bindable(port)) ports.push(port);
  }
  return ports;
}

/** One loopback port, as {@link freePorts}. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/** Whether something accepts connections on the loopback `port` right now (1 s at most). */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, timeout: 1000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Resolves once something accepts connections on the loopback `port` (about 10 s at most). */
export async function waitForPort(port: number): Promise<void> {
  await eventually(() => acceptsConnections(port), {
    timeoutMs: 10_000,
    message: `something to listen on 127.0.0.1:${port}`,
  });
}

interface PortAllocator {
  next(): number;
  size: number;
  describe: string;
}

let current: PortAllocator | undefined;

function allocator(): PortAllocator {
  current ??= sliceAllocator(ephemeralRangeStart(), workerSlot());
  return current;
}

/** The `slot`-th of {@link SLICES} equal slices of [BAND_START, end), walked round. */
function sliceAllocator(end: number, slot: number): PortAllocator {
  const width = Math.floor((end - BAND_START) / SLICES);
  if (width < 16)
    throw new Error(`the port band ${BAND_START}-${end} is too narrow for ${SLICES} test workers`);
  const first = BAND_START + slot * width;
  // Start at a point that differs between runs of the same worker slot (a previous process's
  // services may linger for a moment after it exits).
  let offset = (process.pid * 7) % width;
  return {
    size: width,
    describe: `${first}-${first + width - 1}`,
    next() {
      const port = first + offset;
      offset = (offset + 1) % width;
      return port;
    },
  };
}

/** vitest's worker id (1…n) picks the slice; outside vitest, the process id does. */
function workerSlot(): number {
  const pool = Number(process.env.VITEST_POOL_ID);
  return (Number.isInteger(pool) && pool > 0 ? pool : process.pid) % SLICES;
}

/** The first port of the kernel's ephemeral range (32768 where it cannot be read). */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > BAND_START ? port : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}
