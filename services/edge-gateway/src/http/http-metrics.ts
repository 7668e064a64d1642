import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Per-route metrics of the gateway (route = the http rule template, e.g. `POST /v1/as/users`). */
export class GatewayMetrics {
  readonly requests: Counter<"route" | "method" | "code">;
  readonly duration: Histogram<"route">;
  readonly wsConnections: Gauge<"route">;
  readonly wsFrames: Counter<"route" | "direction">;
  readonly rateLimited: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: "edge_http_requests_total",
      help: "HTTP requests by route, method and response status",
      labelNames: ["route", "method", "code"],
      registers,
    });
    this.duration = new Histogram({
      name: "edge_http_request_duration_seconds",
      help: "HTTP request handling time by route (upstream call included)",
      labelNames: ["route"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.wsConnections = new Gauge({
      name: "edge_ws_connections",
      help: "Open WebSocket connections by route",
      labelNames: ["route"],
      registers,
    });
    this.wsFrames = new Counter({
      name: "edge_ws_frames_total",
      help: "WebSocket frames by route and direction (in = from the client)",
      labelNames: ["route", "direction"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "edge_rate_limited_total",
      help: "Requests and WebSocket upgrades refused by the per-IP rate limit",
      registers,
    });
  }
}
