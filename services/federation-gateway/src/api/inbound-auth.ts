import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { type EnvelopeWindow, utf8 } from "@phoenix/crypto";
import type { common, MessageDecoder } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import type { TokenBucketLimiter } from "@phoenix/runtime/rate-limit";
import type { ReplayStore } from "@phoenix/runtime/replay";
import { authenticateSignedRequest, type SignedRequestPolicy } from "@phoenix/runtime/signed-request";
import {
  FederationAuthError,
  PeerCertificateMismatchError,
  PeerRateLimitedError,
  PeerRefusedError,
} from "../domain/errors.js";
import type { FederationPolicy } from "../domain/policy.js";
import { FEDERATION_REQUEST_CHECKS, type FederationTbs, senderDomain } from "../domain/signing.js";
import type { PeerKeyDirectory } from "../outbound/peer-keys.js";
import type { PeerActivity } from "../store/peer-stats.js";

export interface InboundAuthOptions {
  ownDomain: string;
  policy: FederationPolicy;
  /** Per-peer-domain token buckets. */
  rateLimiter: TokenBucketLimiter;
  keys: PeerKeyDirectory;
  window: EnvelopeWindow;
  logger: Logger;
  /** Shares seen request ids between replicas (the memory guard only covers this replica). */
  seenRequests: ReplayStore;
  db: Database;
  /**
   * Mutual TLS is on: the client certificate must name the signing domain (a SAN DNS name, as a
   * server certificate names its host), so one domain's certificate cannot carry another's traffic.
   */
  matchPeerCertificate?: boolean;
  /** Counts accepted and refused requests per peer (ListPeers). */
  activity?: PeerActivity;
  now?: () => number;
}

/** What the transport says about the caller (runtime CallContext). */
export interface CallTransport {
  peerCertificate?: PeerCertificate | undefined;
}

/** A verified federation request. */
export interface AuthenticatedRequest<T> {
  tbs: T;
  /** The peer domain whose key signed it. */
  sender: string;
}

/**
 * Authenticates a signed server-to-server request, in this order: the claimed sender must be
 * allowed by the policy (PERMISSION_DENIED, logged — before any key fetch for it), one of its
 * current keys must verify the signature (a miss refetches its keys once, which picks up a key
 * rotation), the timestamp must be inside the window and the request id unseen (UNAUTHENTICATED),
 * and the authenticated peer must have a token left (RESOURCE_EXHAUSTED). Under mutual TLS the
 * client certificate must be valid for the claimed sender (PERMISSION_DENIED), checked before its
 * keys are fetched.
 */
export class InboundAuthenticator {
  private readonly policy: SignedRequestPolicy<Database>;

  constructor(private readonly options: InboundAuthOptions) {
    const now = options.now ?? Date.now;
    this.policy = {
      ...FEDERATION_REQUEST_CHECKS,
      window: options.window,
      now: () => now(),
      replay: options.seenRequests,
    };
  }

  async authenticate<T extends FederationTbs>(
    type: MessageDecoder<T>,
    signed: common.Signed | undefined,
    label: string,
    transport: CallTransport = {},
  ): Promise<AuthenticatedRequest<T>> {
    const { policy, keys, logger, activity } = this.options;
    // The claimed sender once the policy admitted it: later refusals are its signature's.
    let admitted: string | undefined;
    const request = await authenticateSignedRequest(
      this.policy,
      { signed, type, method: label },
      async (_tbs, header) => {
        const sender = senderDomain(header);
        if (sender === this.options.ownDomain)
          throw new FederationAuthError("a request cannot come from this domain");
        try {
          policy.check(sender);
        } catch (error) {
          if (error instanceof PeerRefusedError) {
            logger.warn({ peer: sender, label }, "refused a federation request from a denied peer");
            activity?.inboundPolicyRefused(sender);
          }
          throw error;
        }
        admitted = sender;
        if (this.options.matchPeerCertificate === true)
          checkPeerCertificate(sender, transport.peerCertificate);
        return {
          signer: sender,
          key: await keys.keysFor(sender),
          refresh: () => keys.refresh(sender),
          // Request ids are unique per sender only: the claim covers sender and request id.
          replayScope: [utf8(sender)],
        };
      },
    ).catch((error: unknown) => {
      if (admitted !== undefined) activity?.inboundSignatureRefused(admitted);
      throw error;
    });
    const sender = request.signer.signer;
    try {
      await request.claim(this.options.db);
    } catch (error) {
      activity?.inboundSignatureRefused(sender);
      throw error;
    }
    if (this.options.rateLimiter.take(sender, this.policy.now()) > 0) throw new PeerRateLimitedError(sender);
    activity?.inbound(sender);
    return { tbs: request.tbs, sender };
  }
}

/** The client certificate must be valid for `sender` (SAN DNS names, wildcards as in TLS). */
function checkPeerCertificate(sender: string, cert: PeerCertificate | undefined): void {
  if (cert === undefined)
    throw new FederationAuthError("mutual TLS: the peer presented no client certificate");
  if (checkServerIdentity(sender, cert) !== undefined) {
    const names = cert.subjectaltname ?? "no subject alternative names";
    throw new PeerCertificateMismatchError(
      `the client certificate (${names}) is not valid for ${sender}, the domain that signed the request`,
    );
  }
}
