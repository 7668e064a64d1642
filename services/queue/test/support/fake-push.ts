// A push provider on loopback for tests: an HTTP/2 TLS server (certificate for 127.0.0.1 from the
// test CA) that records every request exactly as it arrived and answers what the test scripts.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TestTlsFiles } from "@phoenix/runtime/testing";

/** One request as the server saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The scripted answer to a request. */
export interface FakeAnswer {
  status: number;
  headers?: OutgoingHttpHeaders;
  body?: string;
}

/**
 * A certificate for the IP address 127.0.0.1 signed by the test CA of `tls` (makeTestTls names
 * certificates by DNS name only; the providers are reached as https://127.0.0.1:<port>).
 */
export function loopbackCertificate(tls: TestTlsFiles): { cert: Buffer; key: Buffer } {
  const run = (args: string[]) =>
    execFileSync("openssl", args, { cwd: tls.dir, stdio: "ignore", timeout: 30_000 });
  writeFileSync(join(tls.dir, "loopback.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  run(
    [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "loopback.key",
    ].concat(["-out", "loopback.csr", "-subj", "/CN=127.0.0.1"]),
  );
  run(
    ["x509", "-req", "-in", "loopback.csr", "-CA", tls.caFile, "-CAkey", join(tls.dir, "ca.key")].concat([
      "-CAcreateserial",
      "-out",
      "loopback.pem",
      "-days",
      "1",
      "-extfile",
      "loopback.ext",
    ]),
  );
  return {
    cert: readFileSync(join(tls.dir, "loopback.pem")),
    key: readFileSync(join(tls.dir, "loopback.key")),
  };
}

/** The fake provider: `answer` decides each response (default 200 with an empty JSON body). */
export class FakePushServer {
  readonly requests: RecordedRequest[] = [];
  answer: (request: RecordedRequest) => FakeAnswer = () => ({ status: 200, body: "{}" });
  private readonly sessions = new Set<Http2Session>();

  private constructor(private readonly server: Http2SecureServer) {}

  static async start(credentials: { cert: Buffer; key: Buffer }): Promise<FakePushServer> {
    const server = createSecureServer(credentials);
    const fake = new FakePushServer(server);
    server.on("session", (session) => {
      fake.sessions.add(session);
      session.on("close", () => fake.sessions.delete(session));
    });
    server.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const request: RecordedRequest = {
          method: String(headers[":method"]),
          path: String(headers[":path"]),
          headers,
          body: Buffer.concat(chunks),
        };
        fake.requests.push(request);
        const answer = fake.answer(request);
        stream.respond({ ":status": answer.status, ...answer.headers });
        stream.end(answer.body ?? "");
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    return fake;
  }

  get origin(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The recorded requests whose path starts with `prefix`. */
  on(prefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  /** Closes every client connection (GOAWAY), as a provider does after an idle period. */
  dropConnections(): void {
    for (const session of this.sessions) session.close();
  }

  async close(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The header, claims and signing input of a compact JWT (no verification). */
export function decodeJwt(jwt: string): {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  input: string;
  signature: Buffer;
} {
  const [h, c, s] = jwt.split(".");
  if (h === undefined || c === undefined || s === undefined || jwt.split(".").length !== 3) {
    throw new Error("not a compact JWT");
  }
  return {
    header: JSON.parse(Buffer.from(h, "base64url").toString("utf8")) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, "base64url").toString("utf8")) as Record<string, unknown>,
    input: `${h}.${c}`,
    signature: Buffer.from(s, "base64url"),
  };
}
