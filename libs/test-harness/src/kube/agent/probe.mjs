// Kubelet-style probes from inside a namespace's network (the Kubernetes stand-in mounts this file
// into a helper container, so no probe is ever sent from the host to a container address).
// Serves JSON lines on stdin → stdout: {"id":1,"kind":"grpc","host":"h","port":50051,"service":""}
// answers {"id":1,"ok":true} or {"id":1,"ok":false,"reason":"..."}. Kinds: grpc (grpc.health.v1
// Check, SERVING), http (GET, status 200-399 like the kubelet), tcp (connect).
import http2 from "node:http2";
import net from "node:net";
import readline from "node:readline";

const TIMEOUT_MS = Number(process.env.PROBE_TIMEOUT_MS ?? 2000);

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** grpc.health.v1.Health/Check over plaintext HTTP/2; SERVING is field 1 = 1. */
function grpcProbe({ host, port, service = "" }) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${host}:${port}`);
    session.on("error", reject);
    const name = Buffer.from(service, "utf8");
    const message =
      name.length > 0 ? Buffer.concat([Buffer.from([0x0a, name.length]), name]) : Buffer.alloc(0);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks = [];
    let status;
    stream.on("trailers", (trailers) => {
      status = trailers["grpc-status"];
    });
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) status = headers["grpc-status"];
    });
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("error", (error) => {
      session.close();
      reject(error);
    });
    stream.on("end", () => {
      session.close();
      const body = Buffer.concat(chunks);
      if (String(status) !== "0") return reject(new Error(`grpc-status ${status}`));
      const payload = body.subarray(5);
      // HealthCheckResponse { status = 1 } is 08 01; an empty message is UNKNOWN (0).
      if (payload.length >= 2 && payload[0] === 0x08 && payload[1] === 0x01) return resolve();
      reject(new Error(`not SERVING (${payload.toString("hex") || "UNKNOWN"})`));
    });
    stream.end(frame);
  });
}

async function httpProbe({ host, port, path = "/" }) {
  const response = await fetch(`http://${host}:${port}${path}`, { redirect: "manual" });
  await response.arrayBuffer();
  if (response.status < 200 || response.status >= 400) throw new Error(`HTTP ${response.status}`);
}

function tcpProbe({ host, port }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", reject);
  });
}

const kinds = { grpc: grpcProbe, http: httpProbe, tcp: tcpProbe };

async function probe(request) {
  const run = kinds[request.kind];
  if (!run) return { ok: false, reason: `unknown probe kind ${request.kind}` };
  try {
    await withTimeout(
      run(request),
      request.timeoutMs ?? TIMEOUT_MS,
      `${request.kind} ${request.host}:${request.port}`,
    );
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  if (line.trim() === "") return;
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    process.stdout.write(`${JSON.stringify({ id: null, ok: false, reason: "bad request" })}\n`);
    return;
  }
  const result = await probe(request);
  process.stdout.write(`${JSON.stringify({ id: request.id, ...result })}\n`);
});
lines.on("close", () => process.exit(0));
