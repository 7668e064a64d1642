// A TCP proxy on a loopback port in front of a shared server (Postgres), which a test can cut and
// restore to play an outage without stopping the server other tests use. With a function as
// target it picks the upstream per connection: the round-robin balancer of tcp-balancer.ts.
import net from "node:net";
import { freePort } from "./local-ports.js";

/** A running proxy: connect to `port` to reach the target while it is not cut. */
export interface TcpProxy {
  readonly port: number;
  /** Whether connections are refused and the open ones were cut. */
  readonly isCut: boolean;
  /** Stops listening (new connections are refused) and resets every open connection. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /** Cuts and releases everything. */
  close(): Promise<void>;
}

/** Where a proxy forwards a connection. */
export interface TcpTarget {
  host: string;
  port: number;
}

/**
 * Starts a proxy on a free loopback port forwarding to `target`, or to what `target()` returns
 * for each new connection (a connection is refused when it returns nothing).
 */
export async function startTcpProxy(target: TcpTarget | (() => TcpTarget | undefined)): Promise<TcpProxy> {
  const port = await freePort();
  const open = new Set<net.Socket>();
  let server: net.Server | undefined;

  const listen = async (): Promise<void> => {
    const next = net.createServer((client) => {
      const to = typeof target === "function" ? target() : target;
      if (to === undefined) {
        client.resetAndDestroy();
        return;
      }
      const upstream = net.connect(to);
      for (const socket of [client, upstream]) {
        open.add(socket);
        socket.once("close", () => open.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      next.once("error", reject);
      next.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
        next.off("error", reject);
        resolve();
      });
    });
    server = next;
  };

  const cut = async (): Promise<void> => {
    const closing = server;
    server = undefined;
    for (const socket of open) socket.resetAndDestroy();
    open.clear();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };

  await listen();
  return {
    port,
    get isCut() {
      return server === undefined;
    },
    cut,
    async restore() {
      if (!server) await listen();
    },
    close: cut,
  };
}
