import { readFileSync } from "node:fs";
import { type ChannelCredentials, credentials, ServerCredentials } from "@grpc/grpc-js";
import { FederationConfigError } from "../domain/errors.js";

/** The transport security of server-to-server traffic. */
export interface FederationTls {
  /** PEM certificate chain and key of this domain's gateway (server, and client under mTLS). */
  cert?: Uint8Array | undefined;
  key?: Uint8Array | undefined;
  /** PEM CA bundle peers' certificates must chain to (undefined: the system roots). */
  ca?: Uint8Array | undefined;
  /** Require client certificates on the public listener. */
  mutual: boolean;
  /** No TLS at all (tests, local development). */
  plaintext: boolean;
}

/** Reads the PEM files named in the config; TLS is mandatory unless plaintext is explicitly configured. */
export function loadTls(config: {
  FEDERATION_TLS_CERT_FILE?: string | undefined;
  FEDERATION_TLS_KEY_FILE?: string | undefined;
  FEDERATION_TLS_CA_FILE?: string | undefined;
  FEDERATION_MTLS: boolean;
  FEDERATION_INSECURE_PLAINTEXT: boolean;
}): FederationTls {
  if (config.FEDERATION_INSECURE_PLAINTEXT) return { mutual: false, plaintext: true };
  if (!config.FEDERATION_TLS_CERT_FILE || !config.FEDERATION_TLS_KEY_FILE) {
    throw new FederationConfigError(
      "FEDERATION_TLS_CERT_FILE and FEDERATION_TLS_KEY_FILE are required (or FEDERATION_INSECURE_PLAINTEXT=true for tests)",
    );
  }
  const read = (path: string, what: string) => {
    try {
      return new Uint8Array(readFileSync(path));
    } catch {
      throw new FederationConfigError(`cannot read ${what} file ${path}`);
    }
  };
  return {
    cert: read(config.FEDERATION_TLS_CERT_FILE, "TLS certificate"),
    key: read(config.FEDERATION_TLS_KEY_FILE, "TLS key"),
    ca: config.FEDERATION_TLS_CA_FILE ? read(config.FEDERATION_TLS_CA_FILE, "TLS CA") : undefined,
    mutual: config.FEDERATION_MTLS,
    plaintext: false,
  };
}

const buf = (bytes: Uint8Array | undefined) => (bytes === undefined ? null : Buffer.from(bytes));

/** Credentials of the public FederationService listener. */
export function serverCredentials(tls: FederationTls): ServerCredentials {
  if (tls.plaintext) return ServerCredentials.createInsecure();
  if (!tls.cert || !tls.key) throw new FederationConfigError("TLS certificate and key missing");
  if (tls.mutual && !tls.ca) throw new FederationConfigError("mutual TLS needs FEDERATION_TLS_CA_FILE");
  return ServerCredentials.createSsl(
    buf(tls.ca),
    [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
    tls.mutual,
  );
}

/** Credentials for calls to peer gateways; the own certificate is presented for mutual TLS. */
export function peerCredentials(tls: FederationTls): ChannelCredentials {
  if (tls.plaintext) return credentials.createInsecure();
  return credentials.createSsl(buf(tls.ca), buf(tls.key), buf(tls.cert));
}
