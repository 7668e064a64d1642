import type { ServerResponse } from "node:http";
import type { Readiness } from "./readiness.js";

/** The paths {@link answerProbe} serves. */
export const PROBE_PATHS = ["/healthz", "/readyz"] as const;

/**
 * Answers a Kubernetes probe, the same on every port that serves them (each service's metrics
 * port, the edge gateway's HTTP port): `/healthz` is 200 `{"status":"ok"}` while the process runs
 * (liveness: never fails because a dependency is down, so an outage does not restart pods);
 * `/readyz` is 200 `{"status":"ready",…}` or 503 `{"status":"not ready",…}` with the state of
 * each dependency and check. Returns false for any other path (the caller answers it).
 */
export async function answerProbe(
  path: string,
  method: string,
  readiness: Readiness,
  res: ServerResponse,
): Promise<boolean> {
  if (path !== "/healthz" && path !== "/readyz") return false;
  if (method !== "GET" && method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    return true;
  }
  const { code, body } =
    path === "/healthz"
      ? { code: 200, body: { status: "ok" } }
      : await readiness.report().then((report) => ({ code: report.ready ? 200 : 503, body: report.body }));
  const bytes = Buffer.from(JSON.stringify(body), "utf8");
  res.writeHead(code, {
    "content-type": "application/json; charset=utf-8",
    "content-length": bytes.byteLength,
    "cache-control": "no-store",
  });
  res.end(method === "HEAD" ? undefined : bytes);
  return true;
}
