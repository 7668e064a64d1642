// The edge gateway's own TLS (EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE) for deployments without an
// ingress: HTTPS and WSS with TLS 1.3 only, against a throw-away CA whose certificate names
// `localhost` (the tests dial 127.0.0.1 and send that name as SNI: no name resolution).
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { Writable } from "node:stream";
import { type ConnectionOptions, connect, type TLSSocket } from "node:tls";
import { runModule } from "@phoenix/runtime/module";
import { makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { edgeGatewayModule } from "../src/index.js";
import { type FakeUpstream, startFakeUpstream } from "./support/fake-upstreams.js";

const NAME = "localhost";

function logSink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

let upstream: FakeUpstream;
let tls: TestTlsFiles;
let ca: Buffer;
beforeAll(async () => {
  upstream = await startFakeUpstream();
  tls = makeTestTls([NAME]);
  ca = readFileSync(tls.caFile);
});
afterAll(async () => {
  await upstream?.close();
  tls?.remove();
});

function env(extra: Record<string, string>): Record<string, string> {
  return {
    HTTP_PORT: "0",
    METRICS_PORT: "0",
    AUTH_SERVICE_ADDRESS: upstream.address,
    DELIVERY_SERVICE_ADDRESS: upstream.address,
    QUEUE_SERVICE_ADDRESS: upstream.address,
    ...extra,
  };
}

/** GET over HTTPS trusting the test CA: status, body and the negotiated TLS version. */
function httpsGet(
  port: number,
  path: string,
): Promise<{ status: number; body: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, servername: NAME, ca, timeout: 10_000, agent: false },
      (res) => {
        const protocol = (res.socket as TLSSocket).getProtocol();
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, protocol }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** A TLS handshake limited to `maxVersion`: resolves with the version agreed or the error. */
function handshake(port: number, maxVersion: "TLSv1.2" | "TLSv1.3"): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, servername: NAME, ca, maxVersion, timeout: 10_000 });
    socket.once("secureConnect", () => {
      resolve(socket.getProtocol() ?? "none");
      socket.destroy();
    });
    socket.once("timeout", () => {
      resolve("timeout");
      socket.destroy();
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      resolve(`error ${error.code ?? error.message}`);
      socket.destroy();
    });
  });
}

describe("edge gateway TLS", () => {
  it("serves HTTPS with TLS 1.3 and refuses a client that offers TLS 1.2 at most", async () => {
    const running = await runModule(edgeGatewayModule, {
      env: env({ EDGE_TLS_CERT_FILE: tls.certFile(NAME), EDGE_TLS_KEY_FILE: tls.keyFile(NAME) }),
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    try {
      const { url, port } = running.instance.gateway;
      expect(url).toBe(`https://127.0.0.1:${port}`);
      expect(running.addresses).toEqual({ http: url });
      const ready = await httpsGet(port, "/readyz");
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.body)).toMatchObject({ upstreams: { auth: "SERVING" } });
      expect(ready.protocol).toBe("TLSv1.3");

      expect(await handshake(port, "TLSv1.3")).toBe("TLSv1.3");
      const refused = await handshake(port, "TLSv1.2");
      expect(refused).toMatch(/^error .*PROTOCOL/);

      // Plain HTTP on the TLS port gets no API answer.
      await expect(fetch(`http://127.0.0.1:${port}/readyz`)).rejects.toThrow();
    } finally {
      expect(await running.process.shutdown()).toBe(0);
    }
  });

  it("carries the WebSocket streams over WSS", async () => {
    const running = await runModule(edgeGatewayModule, {
      env: env({ EDGE_TLS_CERT_FILE: tls.certFile(NAME), EDGE_TLS_KEY_FILE: tls.keyFile(NAME) }),
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    try {
      const { port } = running.instance.gateway;
      // ws hands its options to tls.connect, which takes the server name too.
      const options: WebSocket.ClientOptions & ConnectionOptions = { ca, servername: NAME };
      const socket = new WebSocket(`wss://127.0.0.1:${port}/v1/qs/ws/listen`, options);
      const opened = await new Promise<string>((resolve) => {
        socket.once("open", () => resolve("open"));
        socket.once("error", (error) => resolve(`error ${error.message}`));
      });
      expect(opened).toBe("open");
      socket.close();
    } finally {
      expect(await running.process.shutdown()).toBe(0);
    }
  });

  it("refuses a certificate without its key, and an unreadable file, naming the variable", async () => {
    await expect(
      runModule(edgeGatewayModule, {
        env: env({ EDGE_TLS_CERT_FILE: tls.certFile(NAME) }),
        signals: false,
        exit: false,
        logDestination: logSink(),
      }),
    ).rejects.toThrow("EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE go together");
    await expect(
      runModule(edgeGatewayModule, {
        env: env({ EDGE_TLS_CERT_FILE: tls.certFile(NAME), EDGE_TLS_KEY_FILE: `${tls.dir}/missing.key` }),
        signals: false,
        exit: false,
        logDestination: logSink(),
      }),
    ).rejects.toThrow("cannot read EDGE_TLS_KEY_FILE");
  });
});
