import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { answerProbe } from "../health/probe-endpoints.js";
import type { Readiness } from "../health/readiness.js";

export interface MetricsServerOptions {
  registry: Registry;
  /** Default 127.0.0.1: metrics are for the scraper inside the cluster, not the internet. */
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Also answer the probes `/healthz` and `/readyz` from this readiness (see `answerProbe`). */
  readiness?: Readiness;
}

export interface MetricsServer {
  readonly port: number;
  /** `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` in the Prometheus text format (and, given a readiness, the probes
 * `/healthz` and `/readyz`); resolves once listening.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { registry, readiness } = options;
  const host = options.host ?? "127.0.0.1";
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (readiness && (path === "/healthz" || path === "/readyz")) {
      answerProbe(path, req.method ?? "GET", readiness, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`probe failed: ${String(error)}\n`);
      });
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (error: unknown) => {
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(`metrics collection failed: ${String(error)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${urlHost}:${port}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
