import type { Client } from "@grpc/grpc-js";
import { FederationServiceDefinition } from "@phoenix/proto";
import { BoundedCache } from "@phoenix/runtime/cache";
import { createChannel, createServiceClient, type ServiceClient } from "@phoenix/runtime/grpc";
import type { PeerResolver } from "../discovery/resolver.js";
import { PeerDiscoveryError } from "../domain/errors.js";
import { formatAddress } from "../domain/peers.js";
import { type FederationTls, isLoopbackHost, peerCredentials } from "./tls.js";

/** A client of a peer's FederationService. */
export type PeerClient = ServiceClient<FederationServiceDefinition>;

/**
 * One channel per peer gateway, created on first use. Over TLS the peer's certificate must be
 * valid for the peer's domain name, whatever address discovery returned (static maps point at
 * IPs): the domain, not the address, is what the certificate authenticates.
 */
export class PeerClients {
  /** At most `maxChannels` open, least recently used closed first. */
  private readonly channels: BoundedCache<string, { address: string; channel: Client; client: PeerClient }>;

  constructor(
    private readonly resolver: PeerResolver,
    private readonly tls: FederationTls,
    private readonly maxMessageBytes: number,
    maxChannels = 1000,
  ) {
    this.channels = new BoundedCache({
      maxEntries: maxChannels,
      ttlMs: Number.POSITIVE_INFINITY,
      onEvict: (_domain, { channel }) => channel.close(),
    });
  }

  /** Channels open now. */
  get openChannels(): number {
    return this.channels.size;
  }

  /** The client for `domain` (discovers its gateway on first use). */
  async get(domain: string): Promise<PeerClient> {
    const resolved = await this.resolver.resolve(domain);
    if (this.tls.loopbackOnly === true && !isLoopbackHost(resolved.host)) {
      throw new PeerDiscoveryError(
        `${domain} is at ${resolved.host}, off this machine, and federation runs without TLS (loopback only): ` +
          "configure FEDERATION_TLS_CERT_FILE and FEDERATION_TLS_KEY_FILE to federate with it",
      );
    }
    const address = formatAddress(resolved);
    const existing = this.channels.get(domain);
    if (existing && existing.address === address) return existing.client;
    existing?.channel.close();
    const channel = createChannel(address, {
      credentials: peerCredentials(this.tls),
      maxMessageBytes: this.maxMessageBytes,
      channelOptions: this.tls.plaintext
        ? {}
        : { "grpc.ssl_target_name_override": domain, "grpc.default_authority": domain },
    });
    const client = createServiceClient(FederationServiceDefinition, channel, {
      defaultDeadlineMs: 10_000,
    });
    this.channels.set(domain, { address, channel, client });
    return client;
  }

  /** Closes every channel. */
  close(): void {
    for (const { channel } of this.channels.values()) channel.close();
    this.channels.clear();
  }
}
