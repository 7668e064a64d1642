import net from "node:net";
import { eventually } from "./eventually.js";

/** Where Debian's nats-server lives; tests that start a private server skip without it. */
export const NATS_SERVER_BINARY = "/usr/sbin/nats-server";

/** A loopback TCP port free at the time of the call (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === "object" ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Resolves once something accepts connections on the loopback `port` (about 10 s at most). */
export async function waitForPort(port: number): Promise<void> {
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port });
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      }),
    { timeoutMs: 10_000, message: `something to listen on 127.0.0.1:${port}` },
  );
}
