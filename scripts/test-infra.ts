import { execFileSync } from "node:child_process";
import net from "node:net";

/**
 * Global test setup: makes DATABASE_URL and NATS_URL point at a real Postgres and NATS.
 * Order: variables already set win; else the services on their standard loopback ports (what CI
 * and the development machines run); else, when a Docker engine answers, testcontainers.
 */
const LOCAL_PG = "postgres://postgres@127.0.0.1:5432/postgres";
const LOCAL_NATS = "nats://127.0.0.1:4222";

type Stop = () => Promise<void>;
const stops: Stop[] = [];

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1000 });
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

function dockerAvailable(): boolean {
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

export async function setup(): Promise<void> {
  if (!process.env.DATABASE_URL) {
    if (await reachable("127.0.0.1", 5432)) process.env.DATABASE_URL = LOCAL_PG;
    else if (dockerAvailable()) {
      const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
      const pg = await new PostgreSqlContainer("postgres:15").start();
      stops.push(async () => void (await pg.stop()));
      process.env.DATABASE_URL = pg.getConnectionUri();
    }
  }
  if (!process.env.NATS_URL) {
    if (await reachable("127.0.0.1", 4222)) process.env.NATS_URL = LOCAL_NATS;
    else if (dockerAvailable()) {
      const { GenericContainer, Wait } = await import("testcontainers");
      const nats = await new GenericContainer("nats:2.10")
        .withCommand(["-js"])
        .withExposedPorts(4222)
        .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
        .start();
      stops.push(async () => void (await nats.stop()));
      process.env.NATS_URL = `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`;
    }
  }
}

export async function teardown(): Promise<void> {
  for (const stop of stops.reverse()) await stop();
}
