import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { createSecureContext } from "node:tls";
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
  /**
   * Plaintext without the explicit opt-in, allowed because the listener binds loopback: peers are
   * then dialled at loopback addresses only, so no federation traffic leaves the machine in clear.
   */
  loopbackOnly?: boolean;
}

/** Whether a listener bound to `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const bare = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (bare === "localhost") return true;
  const family = isIP(bare);
  if (family === 4) return bare.startsWith("127.");
  if (family === 6) return bare === "::1" || /^::ffff:127\./.test(bare);
  return false;
}

/**
 * Decides the transport of federation traffic and reads the PEM files. TLS whenever certificate
 * and key are configured; plaintext only with the explicit FEDERATION_INSECURE_PLAINTEXT opt-in
 * (which the gateway logs at warn level), or, without it, when the public listener binds loopback
 * (then peers are dialled on loopback only). A listener reachable from other hosts without TLS
 * and without the opt-in is a configuration error: peers' keys could be substituted on path.
 */
export function loadTls(config: {
  GRPC_HOST: string;
  FEDERATION_TLS_CERT_FILE?: string | undefined;
  FEDERATION_TLS_KEY_FILE?: string | undefined;
  FEDERATION_TLS_CA_FILE?: string | undefined;
  FEDERATION_MTLS: boolean;
  FEDERATION_INSECURE_PLAINTEXT: boolean;
}): FederationTls {
  if (config.FEDERATION_INSECURE_PLAINTEXT) return { mutual: false, plaintext: true };
  if (!config.FEDERATION_TLS_CERT_FILE || !config.FEDERATION_TLS_KEY_FILE) {
    if (isLoopbackHost(config.GRPC_HOST)) return { mutual: false, plaintext: true, loopbackOnly: true };
    throw new FederationConfigError(
      `the federation listener binds ${config.GRPC_HOST} (GRPC_HOST; FEDERATION_HOST in the all-in-one homeserver), ` +
        "which other hosts can reach, and federation without TLS there lets peers' keys and traffic be read " +
        "and replaced on path: set FEDERATION_TLS_CERT_FILE and FEDERATION_TLS_KEY_FILE, bind a loopback " +
        "address, or set FEDERATION_INSECURE_PLAINTEXT=true to federate in plaintext knowingly (never in production)",
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

/** The lowest TLS version federation accepts, as listener and as caller. */
export const FEDERATION_TLS_MIN_VERSION = "TLSv1.3";

const buf = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes));

/**
 * Server credentials from Node's own secure-server options. grpc-js's `ServerCredentials.createSsl`
 * takes no TLS version; the options its base class takes go to `http2.createSecureServer`
 * unchanged, and `minVersion` is one of them.
 */
class TlsServerCredentials extends ServerCredentials {
  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/** Credentials of the public FederationService listener: TLS 1.3 only. */
export function serverCredentials(tls: FederationTls): ServerCredentials {
  if (tls.plaintext) return ServerCredentials.createInsecure();
  if (!tls.cert || !tls.key) throw new FederationConfigError("TLS certificate and key missing");
  if (tls.mutual && !tls.ca) throw new FederationConfigError("mutual TLS needs FEDERATION_TLS_CA_FILE");
  return new TlsServerCredentials(
    { requestCert: tls.mutual, minVersion: FEDERATION_TLS_MIN_VERSION },
    { ca: buf(tls.ca), cert: [Buffer.from(tls.cert)], key: [Buffer.from(tls.key)] },
  );
}

/**
 * Credentials for calls to peer gateways (TLS 1.3 only); the own certificate is presented for
 * mutual TLS. Built from a secure context because `credentials.createSsl` takes no TLS version.
 */
export function peerCredentials(tls: FederationTls): ChannelCredentials {
  if (tls.plaintext) return credentials.createInsecure();
  return credentials.createFromSecureContext(
    createSecureContext({
      ca: buf(tls.ca),
      key: buf(tls.key),
      cert: buf(tls.cert),
      minVersion: FEDERATION_TLS_MIN_VERSION,
    }),
  );
}
