// The parts every flow works on, each with one job: who this client is (identity), whose AS
// credentials it trusts (trust), its conversations, their members, its contacts and its queue
// positions; plus the transport, the store and the MLS ciphersuite they share.
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "@phoenix/mls";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import type { Account } from "../account.js";
import type { DomainVerifier } from "../protocol/domain-verifier.js";
import type { ClientStore } from "../store/client-store.js";
import type { Transport } from "../transport.js";
import { Contacts } from "./contacts.js";
import { Conversations } from "./conversations.js";
import { durableTransport } from "./durable-transport.js";
import { ClientIdentity } from "./identity.js";
import { Members } from "./members.js";
import { Profiles } from "./profiles.js";
import { QueuePositions } from "./queues.js";
import { CredentialTrust } from "./trust.js";

let suite: Promise<CiphersuiteImpl> | undefined;

/** The Phoenix MLS ciphersuite (made once per process). */
export function ciphersuite(): Promise<CiphersuiteImpl> {
  suite ??= getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
  return suite;
}

/** One registered client's parts, composed over one store. Internal: apps use PhoenixClient. */
export class ClientCore {
  /** The transport the flows use: a request leaves only once the store's commits are on disk. */
  readonly transport: Transport;
  readonly identity: ClientIdentity;
  readonly trust: CredentialTrust;
  readonly conversations: Conversations;
  readonly members: Members;
  readonly contacts: Contacts;
  readonly profiles: Profiles;
  readonly queues: QueuePositions;

  constructor(
    transport: Transport,
    readonly store: ClientStore,
    readonly account: Account,
    readonly cs: CiphersuiteImpl,
    verifier: DomainVerifier,
  ) {
    this.transport = durableTransport(transport, () => store.durable());
    this.identity = new ClientIdentity(account, cs);
    this.trust = new CredentialTrust(this.transport, verifier);
    this.conversations = new Conversations(store);
    this.members = new Members(store, this.trust, this.conversations, this.identity);
    this.contacts = new Contacts(this.transport, store);
    this.profiles = new Profiles(this.transport, store, account, this.identity.userId);
    this.queues = new QueuePositions(store);
  }
}
