import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM files of a throw-away CA and one certificate per domain (SAN = the domain), made with the openssl CLI. */
export interface TlsFiles {
  dir: string;
  caFile: string;
  certFile(domain: string): string;
  keyFile(domain: string): string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "ignore", timeout: 30_000 });
}

/** Generates a CA and server+client certificates for `domains` (valid one day) in a temp directory. */
export function makeTlsFiles(domains: readonly string[], options: { ca?: string } = {}): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), "fedgw-tls-"));
  const ca = options.ca ?? "ca";
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-keyout", `${ca}.key`, "-out", `${ca}.pem`, "-days", "1", "-subj", `/CN=${ca}`],
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
  return {
    dir,
    caFile: join(dir, `${ca}.pem`),
    certFile: (domain) => join(dir, `${domain}.pem`),
    keyFile: (domain) => join(dir, `${domain}.key`),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
