// A Kubernetes Service as the stand-in reproduces it: a container that owns the Service's DNS
// name(s) on the namespace network and forwards each TCP connection on a Service port to one of
// the Service's *ready* endpoints (round robin), as kube-proxy does for a ClusterIP. The runner
// writes the endpoints to ENDPOINTS_FILE ({"<port>": ["pod-host:targetPort", …]}) as pods become
// ready or go away; the file is read again for every connection. No endpoint: the connection is
// closed at once (a client sees it refused, as with an empty Service).
import { readFileSync } from "node:fs";
import net from "node:net";

const file = process.env.ENDPOINTS_FILE ?? "/endpoints/endpoints.json";
const ports = (process.env.SERVICE_PORTS ?? "").split(",").filter(Boolean).map(Number);
const turn = new Map();

function endpointsOf(port) {
  try {
    const all = JSON.parse(readFileSync(file, "utf8"));
    return Array.isArray(all[String(port)]) ? all[String(port)] : [];
  } catch {
    return [];
  }
}

for (const port of ports) {
  const server = net.createServer((client) => {
    const endpoints = endpointsOf(port);
    if (endpoints.length === 0) {
      client.destroy();
      return;
    }
    const index = (turn.get(port) ?? 0) % endpoints.length;
    turn.set(port, index + 1);
    const [host, targetPort] = endpoints[index].split(/:(?=\d+$)/);
    const upstream = net.connect({ host, port: Number(targetPort) });
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(port, "0.0.0.0");
}

process.on("SIGTERM", () => process.exit(0));
process.stdout.write(`service proxy on ${ports.join(",")}\n`);
