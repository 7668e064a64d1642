import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, NATS_SERVER_BINARY, waitForPort } from "../testing/local-ports.js";
import { BusConfigError, busConfig, openBus } from "./config.js";
import { StreamFullError } from "./errors.js";

describe("bus config: backstop limits", () => {
  it("applies BUS_MAX_MSGS to every stream that sets no limit of its own", async () => {
    const pglite = await PGlite.create();
    const bus = await openBus(busConfig.parse({ BUS_MAX_MSGS: "1", BUS_MAX_AGE_MS: "60000" }), {
      name: "limits",
      db: drizzle({ client: pglite }),
    });
    try {
      await bus.ensureStream({ name: "LIMITED", subjects: ["limited.>"], retention: "workqueue" });
      await bus.publish("limited.x", new Uint8Array(1), { id: "1" });
      await expect(bus.publish("limited.x", new Uint8Array(1), { id: "2" })).rejects.toBeInstanceOf(
        StreamFullError,
      );
    } finally {
      await bus.close();
      await pglite.close();
    }
  });

  it("refuses a client certificate without its key", async () => {
    await expect(
      openBus(busConfig.parse({ NATS_URL: "tls://127.0.0.1:1", NATS_TLS_CERT_FILE: "/tmp/cert.pem" }), {
        name: "tls",
      }),
    ).rejects.toBeInstanceOf(BusConfigError);
  });
});

describe.skipIf(!existsSync(NATS_SERVER_BINARY) || !existsSync("/usr/bin/openssl"))(
  "bus config: NATS over TLS",
  () => {
    let dir: string;
    let server: ChildProcess;
    let url: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "bus-nats-tls-"));
      const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
      ssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
      );
      for (const [name, ext] of [
        ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        ["client", "extendedKeyUsage=clientAuth"],
      ] as const) {
        ssl(
          "req",
          "-new",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-subj",
          `/CN=${name}`,
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.csr`,
        );
        await writeFile(join(dir, `${name}.ext`), `${ext}\n`);
        ssl(
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-days",
          "1",
          "-extfile",
          `${name}.ext`,
          "-out",
          `${name}.pem`,
        );
      }
      const port = await freePort();
      await writeFile(
        join(dir, "nats.conf"),
        `listen: 127.0.0.1:${port}
jetstream { store_dir: ${JSON.stringify(join(dir, "js"))} }
tls {
  cert_file: ${JSON.stringify(join(dir, "server.pem"))}
  key_file: ${JSON.stringify(join(dir, "server.key"))}
  ca_file: ${JSON.stringify(join(dir, "ca.pem"))}
  verify: true
}
`,
      );
      server = spawn(NATS_SERVER_BINARY, ["--config", join(dir, "nats.conf")], { stdio: "ignore" });
      await waitForPort(port);
      url = `tls://127.0.0.1:${port}`;
    }, 60_000);

    afterAll(async () => {
      if (server && server.exitCode === null) {
        const exited = new Promise((resolve) => server.once("exit", resolve));
        server.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    });

    it("connects with NATS_TLS_CA_FILE and a client certificate, and not without the certificate", async () => {
      const tls = {
        NATS_URL: url,
        NATS_TLS_CA_FILE: join(dir, "ca.pem"),
        NATS_TLS_CERT_FILE: join(dir, "client.pem"),
        NATS_TLS_KEY_FILE: join(dir, "client.key"),
      };
      const bus = await openBus(busConfig.parse(tls), { name: "tls-client" });
      try {
        const prefix = `tl${randomBytes(4).toString("hex")}`;
        await bus.ensureStream({ name: `S_${prefix}`, subjects: [`${prefix}.>`], retention: "workqueue" });
        expect((await bus.publish(`${prefix}.x`, new Uint8Array(1), { id: "1" })).duplicate).toBe(false);
      } finally {
        await bus.close();
      }
      const { NATS_TLS_CERT_FILE: _cert, NATS_TLS_KEY_FILE: _key, ...withoutCertificate } = tls;
      await expect(openBus(busConfig.parse(withoutCertificate), { name: "tls-anonymous" })).rejects.toThrow();
    });
  },
);
