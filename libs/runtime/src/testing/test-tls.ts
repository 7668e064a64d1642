// Throw-away TLS material for federation tests: a CA and one certificate per domain whose SAN is
// the domain (peers check a gateway's certificate against the domain they want to reach, not
// against the address discovery found). Made with the openssl CLI, valid for one day.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM files of a throw-away CA and of each domain's certificate and key. */
export interface TestTlsFiles {
  dir: string;
  caFile: string;
  certFile(domain: string): string;
  keyFile(domain: string): string;
  /** Deletes the directory. */
  remove(): void;
}

export interface TestTlsOptions {
  /** The CA's common name and file stem (default `ca`): a second, unrelated CA gets another. */
  ca?: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "ignore", timeout: 30_000 });
}

/**
 * Generates a CA and, per domain, a P-256 certificate for server and client use (SAN `DNS:<domain>`)
 * in a fresh temp directory (removed again if openssl fails).
 */
export function makeTestTls(domains: readonly string[], options: TestTlsOptions = {}): TestTlsFiles {
  const dir = mkdtempSync(join(tmpdir(), "phoenix-test-tls-"));
  const ca = options.ca ?? "ca";
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  try {
    openssl(
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        `${ca}.key`,
        "-out",
        `${ca}.pem`,
        "-days",
        "1",
        "-subj",
        `/CN=${ca}`,
      ],
      dir,
    );
    for (const domain of domains) {
      openssl(
        ["req", ...ec, "-keyout", `${domain}.key`, "-out", `${domain}.csr`, "-subj", `/CN=${domain}`],
        dir,
      );
      writeFileSync(
        join(dir, `${domain}.ext`),
        `subjectAltName=DNS:${domain}\nextendedKeyUsage=serverAuth,clientAuth\n`,
      );
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${domain}.csr`,
          "-CA",
          `${ca}.pem`,
          "-CAkey",
          `${ca}.key`,
          "-CAcreateserial",
          "-out",
          `${domain}.pem`,
          "-days",
          "1",
          "-extfile",
          `${domain}.ext`,
        ],
        dir,
      );
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    caFile: join(dir, `${ca}.pem`),
    certFile: (domain) => join(dir, `${domain}.pem`),
    keyFile: (domain) => join(dir, `${domain}.key`),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
