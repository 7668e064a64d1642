// PhoenixClient: the protocol behind a messaging app's verbs. Every state change is persisted to
// the SQLite store before the method returns, so a client re-opened from its store continues
// where it stopped (queue sequence numbers, queue ratchets, MLS group states, contacts).
import {
  ClientCredential,
  ClientCredentialCsr,
  type ClientCredential as ClientCredentialT,
  type CredentialVerifier,
  createConnectionPackage,
  createHandleConnectionPackage,
  decodeAddPackage,
  decodeFriendshipPackage,
  decodeQueueMessage,
  decryptLeafSecrets,
  decryptUserProfile,
  encodeAddPackage,
  encodeFriendshipPackage,
  encryptLeafSecrets,
  encryptUserProfile,
  encryptUserProfileKey,
  expirationFrom,
  type FriendshipPackage,
  formatUserId,
  generateAeadKey,
  generateUserProfileKey,
  HpkeKeyPair,
  HpkePublicKey,
  handleHash,
  LeafCredential,
  openClientInfo,
  openConnectionOffer,
  openWelcomeAttribution,
  parseUserId,
  QueueRatchetReceiver,
  randomBytes,
  SigningKey,
  sealClientInfo,
  sealConnectionOffer,
  sealQueueConfig,
  sealWelcomeAttribution,
  toHex,
  type UserId,
  userProfileKeyIndex,
  verifyConnectionPackage,
} from "@phoenix/crypto";
import {
  addMembers,
  commitPendingProposals,
  createKeyPackage,
  createNodeCryptoProvider,
  createPhoenixGroup,
  decodeClientState,
  encodeClientState,
  encryptMessage,
  joinExternally,
  joinFromWelcome,
  PHOENIX_CIPHERSUITE,
  parseMlsMessage,
  processIncoming,
  proposeSelfRemove,
  removeMembers,
  updateOwnLeaf,
} from "@phoenix/mls";
import { auth, common, delivery, queue } from "@phoenix/proto";
import { GrpcCallError } from "@phoenix/runtime/grpc";
import { and, asc, eq } from "drizzle-orm";
import {
  type CiphersuiteImpl,
  type ClientState,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type KeyPackage,
  type PrivateKeyPackage,
} from "ts-mls";
import { decodeKeyPackage, encodeKeyPackage, makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { type Account, accountFromJson, accountToJson } from "./account.js";
import {
  ConversationInactiveError,
  NotAContactError,
  NotRegisteredError,
  UnknownConversationError,
  UnknownRequestError,
  UnknownUserError,
} from "./errors.js";
import { type Listener, type ListenOptions, runQueueListener } from "./listener.js";
import { readHandleConnectionPackage } from "./protocol/handle-package.js";
import {
  connectionQueueContext,
  decodeAppContent,
  encodeAppContent,
  fromB64,
  mlsGroupId,
  privateMessageSender,
  qualifiedGroupId,
  signRequest,
  toB64,
  verifierFrom,
  welcomeEpoch,
  wireUserId,
} from "./protocol/helpers.js";
import { buf, ClientStore, u8 } from "./store/client-store.js";
import * as t from "./store/schema.js";
import type { Transport } from "./transport.js";

const DAY = 86_400_000;
const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;
const CONNECTION_PACKAGES = 4;
const ADD_PACKAGES = 4;

const AS = auth.AuthServiceService;
const DS = delivery.DeliveryServiceService;
const QS = queue.QueueServiceService;

/** Options shared by {@link PhoenixClient.register} and {@link PhoenixClient.open}. */
export interface PhoenixClientOptions {
  transport: Transport;
  /** SQLite file of this client (`:memory:` for a throw-away client). */
  storePath: string;
}

/** A conversation as the app shows it. */
export interface Conversation {
  id: string;
  kind: "group" | "connection";
  title: string;
  status: "active" | "inactive";
  /** User ids of the current members, this user included. */
  members: string[];
  unread: number;
}

/** A message or a system event of a conversation. */
export interface Message {
  id: number;
  kind: "text" | "system";
  /** Sender's user id (text messages). */
  sender: string | undefined;
  body: string;
  sentAt: Date;
  read: boolean;
}

/** A connected user. */
export interface Contact {
  userId: string;
  displayName: string | undefined;
  /** The connection conversation with this user. */
  conversationId: string;
}

/** A connection request. */
export interface ConnectionRequest {
  id: number;
  direction: "incoming" | "outgoing";
  userId: string;
  status: "pending" | "accepted" | "rejected";
}

/** What one {@link PhoenixClient.sync} did. */
export interface SyncResult {
  /** Queue messages processed (AS connection queue + QS queue). */
  processed: number;
  /** Messages that could not be processed (skipped; see `errors`). */
  errors: string[];
}

/** Everything a conversation row holds, decoded. */
interface ConversationRow {
  id: string;
  groupId: common.QualifiedGroupId;
  kind: "group" | "connection";
  title: string;
  status: "active" | "inactive";
  earKey: Uint8Array;
  credentialKey: Uint8Array;
  profileKeyKey: Uint8Array;
  state: ClientState | undefined;
  leafKey: SigningKey;
  leafCredential: Uint8Array;
  signatureEncryptionKey: Uint8Array;
  peerUserId: string | null;
}

/** A freshly made leaf for one group: leaf credential, signature key and KeyPackage. */
interface NewLeaf {
  leafKey: SigningKey;
  leaf: LeafCredential;
  signatureEncryptionKey: Uint8Array;
  keyPackage: KeyPackage;
  privateKeyPackage: PrivateKeyPackage;
}

let suite: Promise<CiphersuiteImpl> | undefined;
function ciphersuite(): Promise<CiphersuiteImpl> {
  suite ??= getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
  return suite;
}

/** A Phoenix client: one device of one user, with its SQLite store. */
export class PhoenixClient {
  private lock: Promise<unknown> = Promise.resolve();
  /** Users whose self-remove proposal we saw, per conversation (to say "left" rather than "removed"). */
  private readonly leaving = new Map<string, Set<string>>();

  private constructor(
    private readonly transport: Transport,
    private readonly store: ClientStore,
    private readonly account: Account,
    private readonly cs: CiphersuiteImpl,
    private verifier: CredentialVerifier,
  ) {}

  // ---------------------------------------------------------------------------------------------
  // Life cycle
  // ---------------------------------------------------------------------------------------------

  /**
   * Registers a new user with this client on the homeserver of `domain`: AS credential, connection
   * packages, QS user and client records, AddPackages (one last resort), encrypted profile.
   */
  static async register(
    options: PhoenixClientOptions & { domain: string; displayName: string; inviteCode?: string },
  ): Promise<PhoenixClient> {
    const { transport } = options;
    const cs = await ciphersuite();
    const verifier = await fetchVerifier(transport, "");
    const now = Date.now();
    const clientKey = SigningKey.generate();
    const userUuid = randomBytes(16);
    const clientUuid = randomBytes(16);
    const userId: UserId = { uuid: userUuid, domain: options.domain };
    const connectionQueueKey = HpkeKeyPair.generate();
    const profileKey = generateUserProfileKey();
    const csr = ClientCredentialCsr.create(
      clientKey,
      { clientUuid, userId },
      expirationFrom(now - 60_000, 170 * DAY),
    );
    const wireClient = { user: wireUserId(userId), clientUuid };
    const registered = await transport.auth.registerUser({
      signed: await signRequest(
        auth.RegisterUserTbs,
        AS.registerUser,
        {
          clientCsr: csr.bytes,
          encryptedUserProfile: encryptUserProfile(profileKey, userId, profileBytes(options.displayName))
            .encrypted,
          connectionQueueEncryptionKey: connectionQueueKey.publicKey.bytes,
          inviteCode: options.inviteCode ?? "",
        },
        clientKey,
        { $case: "client", value: wireClient },
      ),
    });
    const credential = verifier.verifyClientCredential(ClientCredential.decode(registered.clientCredential));

    // The QS records are pseudonymous: nothing in them links to the AS identity.
    const qsKeys = await transport.queue.getQueueConfigEncryptionKey({});
    const qsConfigKey = qsKeys.keys.find((k) => k.current)?.publicKey;
    if (qsConfigKey === undefined) throw new Error("the QS publishes no current queue-config key");
    const qsUserKey = SigningKey.generate();
    const qsClientKey = SigningKey.generate();
    const qsQueueKey = HpkeKeyPair.generate();
    const friendshipToken = randomBytes(32);
    const created = await transport.queue.createUser({
      signed: await signRequest(
        queue.CreateUserTbs,
        QS.createUser,
        {
          userRecordAuthKey: qsUserKey.publicKey,
          friendshipToken,
          clientRecordAuthKey: qsClientKey.publicKey,
          queueEncryptionKey: qsQueueKey.publicKey.bytes,
          sealedPushToken: new Uint8Array(0),
        },
        qsUserKey,
        undefined,
      ),
    });
    const account: Account = {
      domain: options.domain,
      userUuid,
      clientUuid,
      clientKeySeed: clientKey.exportSeed(),
      clientCredential: credential.bytes,
      connectionQueueKey: connectionQueueKey.privateBytes,
      profileKey,
      displayName: options.displayName,
      friendshipToken,
      friendshipEncryptionKey: generateAeadKey(),
      qsUserKeySeed: qsUserKey.exportSeed(),
      qsUserId: created.qsUserId,
      qsClientKeySeed: qsClientKey.exportSeed(),
      qsClientId: created.qsClientId,
      qsQueueKey: qsQueueKey.privateBytes,
      qsConfigKey,
    };
    const store = ClientStore.open(options.storePath);
    store.setJson("account", accountToJson(account));
    const client = new PhoenixClient(transport, store, account, cs, verifier);
    await client.publishConnectionPackages();
    await client.publishAddPackages();
    return client;
  }

  /** Re-opens a registered client from its store. */
  static async open(options: PhoenixClientOptions): Promise<PhoenixClient> {
    const store = ClientStore.open(options.storePath);
    const json = store.getJson<Record<string, string>>("account");
    if (json === undefined) {
      store.close();
      throw new NotRegisteredError(`no account in ${options.storePath}`);
    }
    const verifier = await fetchVerifier(options.transport, "");
    return new PhoenixClient(options.transport, store, accountFromJson(json), await ciphersuite(), verifier);
  }

  /** Closes the store (the transport belongs to the caller). */
  async close(): Promise<void> {
    await this.lock.catch(() => undefined);
    this.store.close();
  }

  /** This user's id, `uuid@domain`. */
  get userId(): string {
    return formatUserId(this.user);
  }

  get displayName(): string {
    return this.account.displayName;
  }

  // ---------------------------------------------------------------------------------------------
  // Profile
  // ---------------------------------------------------------------------------------------------

  /** Changes the display name: the profile is re-encrypted under the profile key and merged on the AS. */
  setDisplayName(name: string): Promise<void> {
    return this.serial(async () => {
      const encrypted = encryptUserProfile(this.account.profileKey, this.user, profileBytes(name)).encrypted;
      await this.transport.auth.stageUserProfile({
        signed: await this.asSigned(auth.StageUserProfileTbs, AS.stageUserProfile, {
          encryptedUserProfile: encrypted,
        }),
      });
      await this.transport.auth.mergeUserProfile({
        signed: await this.asSigned(auth.MergeUserProfileTbs, AS.mergeUserProfile, {}),
      });
      this.account.displayName = name;
      this.store.setJson("account", accountToJson(this.account));
    });
  }

  /** Fetches every contact's profile from the AS and decrypts it with the profile key they shared. */
  refreshContactProfiles(): Promise<void> {
    return this.serial(async () => {
      for (const c of this.store.db.select().from(t.contacts).all()) {
        const fp = decodeFriendshipPackage(u8(c.friendshipPackage));
        const name = await this.fetchDisplayName(parseUserId(c.userId), fp.userProfileKey);
        if (name !== undefined)
          this.store.db
            .update(t.contacts)
            .set({ displayName: name })
            .where(eq(t.contacts.userId, c.userId))
            .run();
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Reading the local state
  // ---------------------------------------------------------------------------------------------

  /** Conversations, newest first. */
  conversations(): Conversation[] {
    return this.store.db
      .select()
      .from(t.conversations)
      .all()
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((c) => this.conversationView(c.id));
  }

  /** One conversation. */
  conversation(id: string): Conversation {
    return this.conversationView(id);
  }

  /** Messages of a conversation in arrival order. */
  messages(conversationId: string): Message[] {
    this.row(conversationId);
    return this.store.db
      .select()
      .from(t.messages)
      .where(eq(t.messages.conversationId, conversationId))
      .orderBy(asc(t.messages.id))
      .all()
      .map((m) => ({
        id: m.id,
        kind: m.kind,
        sender: m.senderUserId ?? undefined,
        body: m.body,
        sentAt: new Date(m.sentAt),
        read: m.read,
      }));
  }

  /** Marks every message of a conversation as read. */
  markRead(conversationId: string): void {
    this.row(conversationId);
    this.store.db
      .update(t.messages)
      .set({ read: true })
      .where(eq(t.messages.conversationId, conversationId))
      .run();
  }

  /** Connected users. */
  contacts(): Contact[] {
    return this.store.db
      .select()
      .from(t.contacts)
      .all()
      .map((c) => ({
        userId: c.userId,
        displayName: c.displayName ?? undefined,
        conversationId: c.conversationId,
      }));
  }

  /** Connection requests, incoming and outgoing. */
  connectionRequests(): ConnectionRequest[] {
    return this.store.db
      .select()
      .from(t.connectionRequests)
      .all()
      .map((r) => ({ id: r.id, direction: r.direction, userId: r.userId, status: r.status }));
  }

  // ---------------------------------------------------------------------------------------------
  // Conversations
  // ---------------------------------------------------------------------------------------------

  /** Creates a group conversation with this client as its only member (and admin). */
  createConversation(title: string): Promise<string> {
    return this.serial(() => this.createGroup("group", title, null).then((c) => c.id));
  }

  /** Sends a text message. */
  sendMessage(conversationId: string, text: string): Promise<void> {
    return this.serial(() =>
      this.withCatchUp(conversationId, async () => {
        const c = this.activeRow(conversationId);
        await this.sendApp(c, { type: "text", body: text });
        this.insertMessage(c.id, "text", this.userId, text, true);
      }),
    );
  }

  /** Adds contacts (all their clients) to a group conversation. */
  invite(conversationId: string, userIds: readonly string[]): Promise<void> {
    return this.serial(async () => {
      const credentialKey = this.activeRow(conversationId).credentialKey;
      const joiners: { userId: string; kp: KeyPackage; info: Uint8Array; friendshipKey: Uint8Array }[] = [];
      for (const userId of userIds) {
        const contact = this.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
        if (contact === undefined) throw new NotAContactError(`${userId} is not a contact`);
        const fp = decodeFriendshipPackage(u8(contact.friendshipPackage));
        const fetched = await this.transport.queue.fetchAddPackages({
          friendshipToken: fp.friendshipToken,
          domain: "",
        });
        for (const bytes of fetched.addPackages) {
          const ap = decodeAddPackage(bytes);
          const decoded = decodeKeyPackage(ap.keyPackage, 0);
          if (decoded === undefined) throw new Error(`malformed KeyPackage from ${userId}`);
          const kp = decoded[0];
          const leafCredential =
            kp.leafNode.credential.credentialType === "basic" ? kp.leafNode.credential.identity : undefined;
          if (leafCredential === undefined)
            throw new Error(`KeyPackage of ${userId} has no Phoenix leaf credential`);
          // The AddPackage's secrets open only under the friendship key: they come from the user we know.
          const secrets = decryptLeafSecrets(fp.friendshipEncryptionKey, "addPackage", leafCredential, ap);
          const credential = this.verifier.verifyClientCredential(secrets.clientCredential);
          if (formatUserId(credential.clientId.userId) !== userId)
            throw new Error(`an AddPackage fetched for ${userId} belongs to someone else`);
          LeafCredential.decode(leafCredential).verifyWith(credential, secrets.signatureEncryptionKey);
          const info = sealClientInfo(
            credentialKey,
            "group",
            leafCredential,
            credential,
            secrets.signatureEncryptionKey,
          );
          joiners.push({ userId, kp, info, friendshipKey: fp.friendshipEncryptionKey });
        }
      }
      if (joiners.length === 0) return;
      await this.withCatchUp(conversationId, async () => {
        const c = this.activeRow(conversationId);
        const state = this.stateOf(c);
        const aad = delivery.CommitAad.encode({
          addedClientInfos: joiners.map((j) => j.info),
          senderClientInfo: new Uint8Array(0),
        }).finish();
        const out = await addMembers(
          state,
          this.cs,
          joiners.map((j) => j.kp),
          { aad },
        );
        if (out.welcome === undefined) throw new Error("no Welcome for the added members");
        const welcome = out.welcome;
        const attributions = joiners.map((j) =>
          sealWelcomeAttribution({
            senderKey: this.clientKey,
            senderCredential: this.credential,
            groupId: mlsGroupId(c.groupId),
            welcome,
            groupKeys: {
              groupStateEarKey: c.earKey,
              credentialEncryptionKey: c.credentialKey,
              userProfileKeyEncryptionKey: c.profileKeyKey,
            },
            friendshipEncryptionKey: j.friendshipKey,
          }),
        );
        await this.transport.delivery.groupOperation({
          signed: await this.dsSigned(c, delivery.GroupOperationTbs, DS.groupOperation, {
            groupId: c.groupId,
            commit: out.commit,
            groupInfo: out.groupInfo,
            addedClients: { welcome, encryptedWelcomeAttributionInfos: attributions },
          }),
          groupStateEarKey: c.earKey,
        });
        this.store.transaction(() => {
          this.saveState(c.id, out.newState);
          this.applyMembership(
            c,
            out.newState,
            joiners.map((j) => j.info),
            this.userId,
          );
        });
      });
    });
  }

  /** Removes users (all their clients) from a group conversation. */
  remove(conversationId: string, userIds: readonly string[]): Promise<void> {
    return this.serial(() =>
      this.withCatchUp(conversationId, async () => {
        const c = this.activeRow(conversationId);
        const leaves = this.leavesOf(c.id, userIds);
        if (leaves.length === 0) return;
        const out = await removeMembers(this.stateOf(c), this.cs, leaves);
        await this.transport.delivery.groupOperation({
          signed: await this.dsSigned(c, delivery.GroupOperationTbs, DS.groupOperation, {
            groupId: c.groupId,
            commit: out.commit,
            groupInfo: out.groupInfo,
            addedClients: undefined,
          }),
          groupStateEarKey: c.earKey,
        });
        this.store.transaction(() => {
          this.saveState(c.id, out.newState);
          this.applyMembership(c, out.newState, [], this.userId);
        });
      }),
    );
  }

  /**
   * Refreshes this client's key material in a group (a commit with an UpdatePath): post-compromise
   * security; membership stays the same. Apps call it periodically.
   */
  updateKeys(conversationId: string): Promise<void> {
    return this.serial(() =>
      this.withCatchUp(conversationId, async () => {
        const c = this.activeRow(conversationId);
        const out = await updateOwnLeaf(this.stateOf(c), this.cs);
        await this.transport.delivery.groupOperation({
          signed: await this.dsSigned(c, delivery.GroupOperationTbs, DS.groupOperation, {
            groupId: c.groupId,
            commit: out.commit,
            groupInfo: out.groupInfo,
            addedClients: undefined,
          }),
          groupStateEarKey: c.earKey,
        });
        this.store.transaction(() => {
          this.saveState(c.id, out.newState);
          this.applyMembership(c, out.newState, [], this.userId);
        });
      }),
    );
  }

  /**
   * Leaves a conversation: a self-remove proposal the DS stores; the next commit by another member
   * carries it, and this client sees the conversation inactive once that commit arrives.
   */
  leave(conversationId: string): Promise<void> {
    return this.serial(() =>
      this.withCatchUp(conversationId, async () => {
        const c = this.activeRow(conversationId);
        const { newState, proposal } = await proposeSelfRemove(this.stateOf(c), this.cs);
        await this.transport.delivery.selfRemove({
          signed: await this.dsSigned(c, delivery.SelfRemoveTbs, DS.selfRemove, {
            groupId: c.groupId,
            removeProposals: [proposal],
          }),
          groupStateEarKey: c.earKey,
        });
        this.saveState(c.id, newState);
      }),
    );
  }

  /** Deletes a group (admins): every other member is removed, then the DS forgets the group. */
  deleteConversation(conversationId: string): Promise<void> {
    return this.serial(() =>
      this.withCatchUp(conversationId, async () => {
        const c = this.activeRow(conversationId);
        const me = this.leafOf(c);
        const others = this.store.db
          .select()
          .from(t.members)
          .where(eq(t.members.conversationId, c.id))
          .all()
          .map((m) => m.leafIndex)
          .filter((l) => l !== me);
        const out = await removeMembers(this.stateOf(c), this.cs, others);
        await this.transport.delivery.deleteGroup({
          signed: await this.dsSigned(c, delivery.DeleteGroupTbs, DS.deleteGroup, {
            groupId: c.groupId,
            commit: out.commit,
          }),
          groupStateEarKey: c.earKey,
        });
        this.store.transaction(() => {
          this.setInactive(c.id);
          this.insertMessage(c.id, "system", undefined, `${this.userId} deleted the conversation`, true);
        });
      }),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Connections
  // ---------------------------------------------------------------------------------------------

  /**
   * Asks `userId` to connect: creates a connection group and sends a signed, encrypted connection
   * offer into the connection queue of each of the user's clients. Throws UnknownUserError when the
   * user does not exist.
   */
  connect(userId: string): Promise<void> {
    return this.serial(async () => {
      const target = parseUserId(userId);
      let packages: auth.ClientConnectionPackage[];
      try {
        packages = (await this.transport.auth.getConnectionPackages({ userId: wireUserId(target) })).packages;
      } catch (error) {
        if (error instanceof GrpcCallError && error.code === NOT_FOUND)
          throw new UnknownUserError(`no user ${userId} on ${target.domain}`);
        throw error;
      }
      if (packages.length === 0) throw new UnknownUserError(`${userId} publishes no connection package`);
      const verified = packages.map((p) => {
        const pkg = verifyConnectionPackage(p.connectionPackage, { verifier: this.verifier });
        if (
          pkg.clientCredential === undefined ||
          formatUserId(pkg.clientCredential.clientId.userId) !== userId
        )
          throw new Error(`a connection package for ${userId} belongs to someone else`);
        return { clientId: p.clientId, pkg };
      });
      const c = await this.createGroup("connection", userId, userId);
      for (const { clientId, pkg } of verified) {
        const offer = sealConnectionOffer(
          {
            senderCredential: this.credential,
            connectionGroupId: mlsGroupId(c.groupId),
            groupEarKey: c.earKey,
            credentialEncryptionKey: c.credentialKey,
            friendshipPackage: this.friendshipPackage,
          },
          this.clientKey,
          pkg,
        );
        await this.transport.auth.enqueueConnectionOffer({ clientId, connectionOffer: offer });
      }
      this.store.db
        .insert(t.connectionRequests)
        .values({
          direction: "outgoing",
          userId,
          conversationId: c.id,
          status: "pending",
          createdAt: Date.now(),
        })
        .run();
    });
  }

  /**
   * Accepts an incoming connection request: joins the initiator's connection group by external
   * commit and sends this user's friendship keys into it. Both sides then have a contact.
   */
  acceptConnection(requestId: number): Promise<string> {
    return this.serial(async () => {
      const req = this.store.db
        .select()
        .from(t.connectionRequests)
        .where(eq(t.connectionRequests.id, requestId))
        .get();
      if (req === undefined || req.direction !== "incoming" || req.status !== "pending" || req.offer === null)
        throw new UnknownRequestError(`no pending incoming connection request ${requestId}`);
      const offer = decodeStoredOffer(u8(req.offer));
      const groupId = qualifiedGroupId(offer.groupId);
      const info = await this.transport.delivery.connectionGroupInfo({
        groupId,
        groupStateEarKey: offer.earKey,
      });
      const leaf = await this.newLeaf();
      const aad = delivery.CommitAad.encode({
        addedClientInfos: [],
        senderClientInfo: sealClientInfo(
          offer.credentialKey,
          "group",
          leaf.leaf.bytes,
          this.credential,
          leaf.signatureEncryptionKey,
        ),
      }).finish();
      const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
      const out = await joinExternally(
        info.groupInfo,
        leaf.keyPackage,
        leaf.privateKeyPackage,
        this.cs,
        tree,
        { aad },
      );
      const myLeaf = out.newState.privatePath.leafIndex;
      await this.transport.delivery.joinConnectionGroup({
        signed: await signRequest(
          delivery.JoinConnectionGroupTbs,
          DS.joinConnectionGroup,
          {
            groupId,
            externalCommit: out.commit,
            groupInfo: out.groupInfo,
            joinerQueue: this.qsReference(),
            // Connection groups have no separate profile-key key: the credential key protects it.
            encryptedUserProfileKey: encryptUserProfileKey(
              offer.credentialKey,
              this.user,
              this.account.profileKey,
            ),
          },
          leaf.leafKey,
          { $case: "leafIndex", value: myLeaf },
        ),
        groupStateEarKey: offer.earKey,
      });
      const id = toHex(offer.groupId);
      const peer = formatUserId(offer.senderCredential.clientId.userId);
      this.store.transaction(() => {
        this.insertConversation({
          id,
          groupId,
          kind: "connection",
          title: peer,
          earKey: offer.earKey,
          credentialKey: offer.credentialKey,
          profileKeyKey: offer.credentialKey,
          state: out.newState,
          leaf,
          peerUserId: peer,
        });
        this.store.db
          .insert(t.members)
          .values({ conversationId: id, leafIndex: myLeaf, userId: this.userId })
          .run();
        for (const m of info.members) {
          const user = this.userOfClientInfo(
            out.newState,
            m.leafIndex,
            m.encryptedClientInfo,
            offer.credentialKey,
          );
          if (user !== undefined)
            this.store.db
              .insert(t.members)
              .values({ conversationId: id, leafIndex: m.leafIndex, userId: user })
              .run();
        }
        this.upsertContact(peer, offer.friendshipPackage, id);
        this.store.db
          .update(t.connectionRequests)
          .set({ status: "accepted" })
          .where(eq(t.connectionRequests.id, requestId))
          .run();
      });
      const c = this.row(id);
      await this.sendApp(c, {
        type: "friendship",
        friendshipPackage: toB64(encodeFriendshipPackage(this.friendshipPackage)),
      });
      await this.refreshProfile(peer);
      return id;
    });
  }

  /**
   * Claims a handle on the AS (only its hash is stored there) with its own signing key and
   * connection queue, and publishes connection packages under it. Others can then connect by
   * handle without learning the user id.
   */
  createHandle(handle: string): Promise<void> {
    return this.serial(async () => {
      const handleKey = SigningKey.generate();
      const queueKey = HpkeKeyPair.generate();
      const hash = handleHash(handle);
      await this.transport.auth.createHandle({
        signed: await signRequest(
          auth.CreateHandleTbs,
          AS.createHandle,
          {
            handle,
            handleHash: hash,
            verifyingKey: handleKey.publicKey,
            connectionQueueEncryptionKey: queueKey.publicKey.bytes,
          },
          handleKey,
          { $case: "handleHash", value: hash },
        ),
      });
      const lifetime = expirationFrom(Date.now() - 60_000, 30 * DAY);
      const packages: auth.PublishedConnectionPackage[] = [];
      for (let i = 0; i <= CONNECTION_PACKAGES; i++) {
        const { bytes, decryptionKey } = createHandleConnectionPackage({ handleKey, lifetime });
        const pkgHash = readHandleConnectionPackage(bytes).hash;
        this.store.db
          .insert(t.connectionPackageKeys)
          .values({ hash: toHex(pkgHash), decryptionKey: buf(decryptionKey.privateBytes) })
          .run();
        packages.push({ connectionPackage: bytes, lastResort: i === CONNECTION_PACKAGES });
      }
      await this.transport.auth.publishHandleConnectionPackages({
        signed: await signRequest(
          auth.PublishHandleConnectionPackagesTbs,
          AS.publishHandleConnectionPackages,
          { packages },
          handleKey,
          { $case: "handleHash", value: hash },
        ),
      });
      const all = this.storedHandles().filter((h) => h.handle !== handle);
      all.push({ handle, keySeed: toHex(handleKey.exportSeed()), queueKey: toHex(queueKey.privateBytes) });
      this.store.setJson("handles", all);
    });
  }

  /** The handles this client holds. */
  handles(): string[] {
    return this.storedHandles().map((h) => h.handle);
  }

  /**
   * Asks the owner of `handle` to connect (like {@link connect}, through the handle's connection
   * queue). Throws UnknownUserError when no such handle exists.
   */
  connectByHandle(handle: string): Promise<void> {
    return this.serial(async () => {
      const hash = handleHash(handle);
      let bytes: Uint8Array;
      try {
        bytes = (await this.transport.auth.getHandleConnectionPackage({ handleHash: hash, domain: "" }))
          .connectionPackage;
      } catch (error) {
        if (error instanceof GrpcCallError && error.code === NOT_FOUND)
          throw new UnknownUserError(`no handle ${handle}`);
        throw error;
      }
      const pkg = readHandleConnectionPackage(bytes);
      const c = await this.createGroup("connection", handle, null);
      const offer = sealConnectionOffer(
        {
          senderCredential: this.credential,
          connectionGroupId: mlsGroupId(c.groupId),
          groupEarKey: c.earKey,
          credentialEncryptionKey: c.credentialKey,
          friendshipPackage: this.friendshipPackage,
        },
        this.clientKey,
        pkg,
      );
      await this.transport.auth.enqueueHandleConnectionOffer({
        handleHash: hash,
        domain: "",
        connectionOffer: offer,
      });
      this.store.db
        .insert(t.connectionRequests)
        .values({
          direction: "outgoing",
          userId: handle,
          conversationId: c.id,
          status: "pending",
          createdAt: Date.now(),
        })
        .run();
    });
  }

  private storedHandles(): { handle: string; keySeed: string; queueKey: string }[] {
    return this.store.getJson<{ handle: string; keySeed: string; queueKey: string }[]>("handles") ?? [];
  }

  /** Declines an incoming connection request (nothing is sent). */
  rejectConnection(requestId: number): void {
    this.store.db
      .update(t.connectionRequests)
      .set({ status: "rejected" })
      .where(and(eq(t.connectionRequests.id, requestId), eq(t.connectionRequests.direction, "incoming")))
      .run();
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving
  // ---------------------------------------------------------------------------------------------

  /**
   * Fetches and processes everything queued for this client: connection offers from the AS
   * connection queue, group messages, commits and Welcomes from the QS queue. Then commits any
   * self-remove proposals that are waiting in a group.
   */
  sync(): Promise<SyncResult> {
    return this.serial(async () => {
      const result: SyncResult = { processed: 0, errors: [] };
      await this.drainConnectionQueue(result);
      for (const h of this.storedHandles()) await this.drainHandleQueue(h, result);
      const pending = new Set<string>();
      await this.drainQsQueue(result, pending);
      for (const id of pending) await this.commitPending(id, result);
      return result;
    });
  }

  /**
   * Listens live on the QS queue and the AS connection queue: everything that arrives is
   * processed (and persisted) at once, then acknowledged. The streams re-open after failures.
   */
  listen(options: ListenOptions = {}): Listener {
    const report = (errors: string[]) => {
      for (const e of errors) options.onError?.(new Error(e));
    };
    const qs = runQueueListener<queue.ListenRequest, queue.ListenResponse>(
      {
        open: () => this.transport.queue.listen(),
        init: async () => ({
          request: {
            $case: "init",
            value: await this.qsSigned(queue.ListenTbs, QS.listen, { sequenceNumberStart: this.seq("qs") }),
          },
        }),
        ack: (upTo) => ({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
        event: (res) => res.event,
        handle: (m) =>
          this.serial(async () => {
            const result: SyncResult = { processed: 0, errors: [] };
            const pending = new Set<string>();
            await this.processQsMessage(m, result, pending);
            for (const id of pending) await this.commitPending(id, result);
            report(result.errors);
          }),
      },
      options,
    );
    const as = runQueueListener<auth.ListenConnectionOffersRequest, auth.ListenConnectionOffersResponse>(
      {
        open: () => this.transport.auth.listenConnectionOffers(),
        init: async () => ({
          request: {
            $case: "init",
            value: await this.asSigned(auth.ListenConnectionOffersTbs, AS.listenConnectionOffers, {
              sequenceNumberStart: this.seq("as"),
            }),
          },
        }),
        ack: (upTo) => ({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
        event: (res) => res.event,
        handle: (m) =>
          this.serial(async () => {
            const result: SyncResult = { processed: 0, errors: [] };
            this.processOfferMessage(m, result);
            report(result.errors);
          }),
      },
      options,
    );
    return {
      async stop() {
        await Promise.all([qs.stop(), as.stop()]);
      },
    };
  }

  private async drainConnectionQueue(result: SyncResult): Promise<void> {
    for (let page = 0; page < 100; page++) {
      const next = this.seq("as");
      const res = await this.transport.auth.dequeueConnectionOffers({
        signed: await this.asSigned(auth.DequeueConnectionOffersTbs, AS.dequeueConnectionOffers, {
          sequenceNumberStart: next,
          maxMessages: 0,
        }),
      });
      for (const m of res.messages) this.processOfferMessage(m, result);
      if (res.remaining === 0n || res.messages.length === 0) return;
    }
  }

  private async drainHandleQueue(
    h: { handle: string; keySeed: string; queueKey: string },
    result: SyncResult,
  ): Promise<void> {
    const key = HpkeKeyPair.fromPrivateBytes(hexBytes(h.queueKey));
    const handleKey = SigningKey.fromSeed(hexBytes(h.keySeed));
    const hash = handleHash(h.handle);
    const name = `handle:${h.handle}`;
    for (let page = 0; page < 100; page++) {
      const next = this.seq(name);
      const res = await this.transport.auth.dequeueHandleConnectionOffers({
        signed: await signRequest(
          auth.DequeueHandleConnectionOffersTbs,
          AS.dequeueHandleConnectionOffers,
          { sequenceNumberStart: next, maxMessages: 0 },
          handleKey,
          { $case: "handleHash", value: hash },
        ),
      });
      for (const m of res.messages) {
        if (m.sequenceNumber < this.seq(name)) continue;
        // A handle's queue ratchet is bound to the handle hash.
        const payload = this.openQueueMessage(name, key, hash, m);
        if (payload?.content?.$case === "connectionOffer") {
          try {
            this.receiveOffer(payload.content.value);
          } catch (error) {
            result.errors.push(`connection offer to ${h.handle}: ${(error as Error).message}`);
          }
        }
        result.processed++;
      }
      if (res.remaining === 0n || res.messages.length === 0) return;
    }
  }

  private async drainQsQueue(result: SyncResult, pending: Set<string>): Promise<void> {
    for (let page = 0; page < 100; page++) {
      const next = this.seq("qs");
      const res = await this.transport.queue.dequeue({
        signed: await this.qsSigned(queue.DequeueTbs, QS.dequeue, {
          sequenceNumberStart: next,
          maxMessages: 0,
        }),
      });
      for (const m of res.messages) await this.processQsMessage(m, result, pending);
      if (res.remaining === 0n || res.messages.length === 0) return;
    }
  }

  /** Processes one QS queue message unless it was processed before (redelivery). */
  private async processQsMessage(
    m: common.QueueMessage,
    result: SyncResult,
    pending: Set<string>,
  ): Promise<void> {
    if (m.sequenceNumber < this.seq("qs")) return;
    const key = HpkeKeyPair.fromPrivateBytes(this.account.qsQueueKey);
    const payload = this.openQueueMessage("qs", key, this.account.qsClientId, m);
    if (payload !== undefined) {
      try {
        await this.receivePayload(payload, pending);
      } catch (error) {
        result.errors.push(`${payload.content?.$case ?? "empty"}: ${(error as Error).message}`);
      }
    }
    result.processed++;
  }

  /** Processes one message of the client's AS connection queue unless it was processed before. */
  private processOfferMessage(m: common.QueueMessage, result: SyncResult): void {
    if (m.sequenceNumber < this.seq("as")) return;
    const key = HpkeKeyPair.fromPrivateBytes(this.account.connectionQueueKey);
    const context = connectionQueueContext(this.account.clientUuid, this.account.userUuid);
    const payload = this.openQueueMessage("as", key, context, m);
    if (payload?.content?.$case === "connectionOffer") {
      try {
        this.receiveOffer(payload.content.value);
      } catch (error) {
        result.errors.push(`connection offer: ${(error as Error).message}`);
      }
    }
    result.processed++;
  }

  /**
   * Decrypts one queue message with the queue ratchet (message 0 starts it) and advances the stored
   * sequence number and ratchet, so a message is never processed twice.
   */
  private openQueueMessage(
    queueName: string,
    key: HpkeKeyPair,
    context: Uint8Array,
    m: common.QueueMessage,
  ): common.QueuePayload | undefined {
    const decoded = decodeQueueMessage(m.ciphertext);
    const stored = this.store.getBytes(`${queueName}.ratchet`);
    let payload: common.QueuePayload | undefined;
    let receiver: QueueRatchetReceiver;
    if (stored === undefined) {
      receiver = QueueRatchetReceiver.fromInit(key, context, decoded);
    } else {
      receiver = QueueRatchetReceiver.fromBytes(stored);
      const out = receiver.decrypt(decoded, key);
      if (out.kind === "message") payload = common.QueuePayload.decode(out.payload);
    }
    this.store.transaction(() => {
      this.store.setBytes(`${queueName}.ratchet`, receiver.toBytes());
      this.store.setJson(`${queueName}.next`, (m.sequenceNumber + 1n).toString());
    });
    return payload;
  }

  private seq(queueName: string): bigint {
    return BigInt(this.store.getJson<string>(`${queueName}.next`) ?? "0");
  }

  private receiveOffer(sealed: Uint8Array): void {
    for (const row of this.store.db.select().from(t.connectionPackageKeys).all()) {
      let offer: ReturnType<typeof openConnectionOffer>;
      try {
        offer = openConnectionOffer(sealed, {
          decryptionKey: HpkeKeyPair.fromPrivateBytes(u8(row.decryptionKey)),
          packageHash: hexBytes(row.hash),
          verifier: this.verifier,
        });
      } catch {
        continue;
      }
      const from = formatUserId(offer.senderCredential.clientId.userId);
      const id = toHex(offer.connectionGroupId);
      const known = this.store.db
        .select()
        .from(t.connectionRequests)
        .where(eq(t.connectionRequests.conversationId, id))
        .get();
      if (known !== undefined) return;
      this.store.db
        .insert(t.connectionRequests)
        .values({
          direction: "incoming",
          userId: from,
          conversationId: id,
          offer: buf(
            encodeStoredOffer({
              senderCredential: offer.senderCredential,
              groupId: offer.connectionGroupId,
              earKey: offer.groupEarKey,
              credentialKey: offer.credentialEncryptionKey,
              friendshipPackage: offer.friendshipPackage,
            }),
          ),
          status: "pending",
          createdAt: Date.now(),
        })
        .run();
      return;
    }
    throw new Error("the offer opens under none of our connection packages");
  }

  private async receivePayload(payload: common.QueuePayload, pending: Set<string>): Promise<void> {
    const content = payload.content;
    if (content === undefined) return;
    if (content.$case === "welcomeBundle") return this.receiveWelcome(content.value);
    if (content.$case === "mlsMessage") return this.receiveMls(content.value, pending);
    if (content.$case === "requiredRemovals") {
      const id = toHex(mlsGroupId(content.value.groupId ?? { uuid: new Uint8Array(0), domain: "" }));
      pending.add(id);
    }
  }

  private async receiveMls(bytes: Uint8Array, pending: Set<string>): Promise<void> {
    const msg = parseMlsMessage(bytes);
    let groupId: Uint8Array;
    let commitInfo: { sender: number | "external"; aad: Uint8Array; proposal: boolean } | undefined;
    if (msg.wireformat === "mls_public_message") {
      const content = msg.publicMessage.content;
      groupId = content.groupId;
      const sender = content.sender;
      commitInfo = {
        sender: sender.senderType === "member" ? sender.leafIndex : "external",
        aad: content.authenticatedData,
        proposal: content.contentType === "proposal",
      };
    } else if (msg.wireformat === "mls_private_message") {
      groupId = msg.privateMessage.groupId;
    } else return;
    const privateMessage = msg.wireformat === "mls_private_message" ? msg.privateMessage : undefined;
    const id = toHex(groupId);
    const c = this.store.db.select().from(t.conversations).where(eq(t.conversations.id, id)).get();
    if (c === undefined) throw new Error(`message for unknown group ${id}`);
    const conv = this.row(id);
    if (conv.status !== "active" || conv.state === undefined) return;
    const senderLeaf =
      privateMessage === undefined
        ? undefined
        : await privateMessageSender(conv.state, privateMessage, this.cs);
    const res = await processIncoming(conv.state, this.cs, bytes);
    if (res.kind === "application") {
      const app = decodeAppContent(res.plaintext);
      const sender = senderLeaf === undefined ? undefined : this.memberAt(id, senderLeaf);
      this.store.transaction(() => {
        this.saveState(id, res.newState);
        if (app?.type === "text") this.insertMessage(id, "text", sender, app.body, false);
        // The peer of a connection made by handle is learned from its leaf when it joins.
        const isPeer =
          conv.peerUserId === null
            ? conv.kind === "connection" && sender !== this.userId
            : sender === conv.peerUserId;
        if (app?.type === "friendship" && sender !== undefined && isPeer) {
          if (conv.peerUserId === null)
            this.store.db
              .update(t.conversations)
              .set({ peerUserId: sender })
              .where(eq(t.conversations.id, id))
              .run();
          this.upsertContact(sender, decodeFriendshipPackage(fromB64(app.friendshipPackage)), id);
          this.store.db
            .update(t.connectionRequests)
            .set({ status: "accepted" })
            .where(
              and(
                eq(t.connectionRequests.conversationId, id),
                eq(t.connectionRequests.direction, "outgoing"),
              ),
            )
            .run();
        }
      });
      if (app?.type === "friendship" && sender !== undefined) await this.refreshProfile(sender);
      return;
    }
    if (commitInfo?.proposal === true) {
      // A stored proposal (a member leaving): remember who, and commit it after this sync.
      if (commitInfo.sender !== "external") {
        const who = this.memberAt(id, commitInfo.sender);
        if (who !== undefined) this.leavingSet(id).add(who);
      }
      this.saveState(id, res.newState);
      pending.add(id);
      return;
    }
    const aad = safeCommitAad(commitInfo?.aad);
    const committer =
      commitInfo?.sender === "external" || commitInfo === undefined
        ? undefined
        : this.memberAt(id, commitInfo.sender);
    this.store.transaction(() => {
      if (res.removedFromGroup) {
        this.saveState(id, res.newState);
        this.setInactive(id);
        this.insertMessage(id, "system", committer, `${committer ?? "someone"} removed you`, false);
        return;
      }
      this.saveState(id, res.newState);
      const infos = [
        ...(aad?.addedClientInfos ?? []),
        ...(aad && aad.senderClientInfo.length > 0 ? [aad.senderClientInfo] : []),
      ];
      this.applyMembership(conv, res.newState, infos, committer);
    });
  }

  private async receiveWelcome(bundle: common.WelcomeBundle): Promise<void> {
    if (bundle.groupId === undefined) throw new Error("Welcome without group id");
    const mlsId = mlsGroupId(bundle.groupId);
    const attribution = openWelcomeAttribution(bundle.encryptedWelcomeAttributionInfo, {
      friendshipEncryptionKey: this.account.friendshipEncryptionKey,
      groupId: mlsId,
      welcome: bundle.welcome,
      verifier: this.verifier,
    });
    const parsed = parseMlsMessage(bundle.welcome);
    if (parsed.wireformat !== "mls_welcome") throw new Error("not a Welcome");
    const refs = new Set(parsed.welcome.secrets.map((s) => toHex(s.newMember)));
    const row = this.store.db
      .select()
      .from(t.addPackageKeys)
      .all()
      .find((r) => refs.has(r.ref));
    if (row === undefined) throw new Error("the Welcome is for none of our AddPackages");
    const kp = decodeKeyPackage(u8(row.keyPackage), 0)?.[0];
    if (kp === undefined) throw new Error("stored KeyPackage is corrupt");
    const priv = decodePrivateKeyPackage(u8(row.privateKeyPackage));
    const epoch = await welcomeEpoch(parsed.welcome, kp, priv, this.cs);
    if (epoch === undefined) throw new Error("cannot read the Welcome's epoch");
    const leafKey = SigningKey.fromSeed(u8(row.leafSeed));
    const keys = attribution.groupKeys;
    const info = await this.transport.delivery.welcomeInfo({
      signed: await signRequest(
        delivery.WelcomeInfoTbs,
        DS.welcomeInfo,
        { groupId: bundle.groupId, epoch },
        leafKey,
        { $case: "keyPackageRef", value: hexBytes(row.ref) },
      ),
      groupStateEarKey: keys.groupStateEarKey,
    });
    const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
    const state = await joinFromWelcome(bundle.welcome, kp, priv, this.cs, tree);
    const id = toHex(mlsId);
    const inviter = formatUserId(attribution.sender.userId);
    this.store.transaction(() => {
      this.store.db.delete(t.conversations).where(eq(t.conversations.id, id)).run();
      this.store.db.delete(t.members).where(eq(t.members.conversationId, id)).run();
      this.insertConversation({
        id,
        groupId: bundle.groupId as common.QualifiedGroupId,
        kind: "group",
        title: `group of ${inviter}`,
        earKey: keys.groupStateEarKey,
        credentialKey: keys.credentialEncryptionKey,
        profileKeyKey: keys.userProfileKeyEncryptionKey,
        state,
        leaf: {
          leafKey,
          leafCredential: u8(row.leafCredential),
          signatureEncryptionKey: u8(row.signatureEncryptionKey),
        },
        peerUserId: null,
      });
      for (const m of info.members) {
        const user = this.userOfClientInfo(
          state,
          m.leafIndex,
          m.encryptedClientInfo,
          keys.credentialEncryptionKey,
        );
        if (user !== undefined)
          this.store.db
            .insert(t.members)
            .values({ conversationId: id, leafIndex: m.leafIndex, userId: user })
            .run();
      }
      const mine = state.privatePath.leafIndex;
      this.store.db
        .insert(t.members)
        .values({ conversationId: id, leafIndex: mine, userId: this.userId })
        .onConflictDoUpdate({
          target: [t.members.conversationId, t.members.leafIndex],
          set: { userId: this.userId },
        })
        .run();
      this.insertMessage(id, "system", inviter, `${inviter} added ${this.userId}`, false);
      if (!row.lastResort)
        this.store.db.delete(t.addPackageKeys).where(eq(t.addPackageKeys.ref, row.ref)).run();
    });
    const left = this.store.db
      .select()
      .from(t.addPackageKeys)
      .all()
      .filter((r) => !r.lastResort).length;
    if (left === 0) await this.publishAddPackages();
  }

  /** Commits the proposals waiting in a group (a member's self-remove, DS-required removals). */
  private async commitPending(id: string, result: SyncResult): Promise<void> {
    const c = this.row(id);
    if (c.status !== "active" || c.state === undefined) return;
    if (Object.keys(c.state.unappliedProposals).length === 0) return;
    const out = await commitPendingProposals(c.state, this.cs);
    try {
      await this.transport.delivery.groupOperation({
        signed: await this.dsSigned(c, delivery.GroupOperationTbs, DS.groupOperation, {
          groupId: c.groupId,
          commit: out.commit,
          groupInfo: out.groupInfo,
          addedClients: undefined,
        }),
        groupStateEarKey: c.earKey,
      });
    } catch (error) {
      // Another member committed first: its commit is in our queue and brings us up to date.
      if (error instanceof GrpcCallError && error.code === FAILED_PRECONDITION) return;
      result.errors.push(`commit of pending proposals: ${(error as Error).message}`);
      return;
    }
    this.store.transaction(() => {
      this.saveState(id, out.newState);
      this.applyMembership(c, out.newState, [], this.userId);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Publishing packages
  // ---------------------------------------------------------------------------------------------

  private async publishConnectionPackages(): Promise<void> {
    const lifetime = expirationFrom(Date.now() - 60_000, 30 * DAY);
    const packages: auth.PublishedConnectionPackage[] = [];
    for (let i = 0; i <= CONNECTION_PACKAGES; i++) {
      const { bytes, decryptionKey } = createConnectionPackage({
        clientKey: this.clientKey,
        clientCredential: this.credential,
        lifetime,
      });
      const hash = verifyConnectionPackage(bytes, { verifier: this.verifier }).hash;
      this.store.db
        .insert(t.connectionPackageKeys)
        .values({ hash: toHex(hash), decryptionKey: buf(decryptionKey.privateBytes) })
        .run();
      packages.push({ connectionPackage: bytes, lastResort: i === CONNECTION_PACKAGES });
    }
    await this.transport.auth.publishConnectionPackages({
      signed: await this.asSigned(auth.PublishConnectionPackagesTbs, AS.publishConnectionPackages, {
        packages,
      }),
    });
  }

  /** Publishes a fresh set of AddPackages (replacing the QS's), the last one marked last resort. */
  private async publishAddPackages(): Promise<void> {
    const addPackages: Uint8Array[] = [];
    for (let i = 0; i <= ADD_PACKAGES; i++) {
      const lastResort = i === ADD_PACKAGES;
      const leaf = await this.newLeaf(lastResort);
      const secrets = encryptLeafSecrets(
        this.account.friendshipEncryptionKey,
        "addPackage",
        leaf.leaf.bytes,
        this.credential,
        leaf.signatureEncryptionKey,
      );
      const keyPackage = encodeKeyPackage(leaf.keyPackage);
      const ref = await makeKeyPackageRef(leaf.keyPackage, this.cs.hash);
      this.store.db
        .insert(t.addPackageKeys)
        .values({
          ref: toHex(ref),
          keyPackage: buf(keyPackage),
          privateKeyPackage: buf(encodePrivateKeyPackage(leaf.privateKeyPackage)),
          leafSeed: buf(leaf.leafKey.exportSeed()),
          leafCredential: buf(leaf.leaf.bytes),
          signatureEncryptionKey: buf(leaf.signatureEncryptionKey),
          lastResort,
        })
        .run();
      addPackages.push(encodeAddPackage({ keyPackage, ...secrets }));
    }
    await this.transport.queue.publishAddPackages({
      signed: await this.qsSigned(queue.PublishAddPackagesTbs, QS.publishAddPackages, { addPackages }),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------

  /**
   * Runs a group operation; when the DS answers FAILED_PRECONDITION (another member's commit is
   * ahead of us, or stored proposals must be included) it catches up from the QS queue and tries
   * again (bounded).
   */
  private async withCatchUp<T>(conversationId: string, op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        if (!(error instanceof GrpcCallError && error.code === FAILED_PRECONDITION) || attempt >= 50)
          throw error;
        const before = this.row(conversationId).state?.groupContext.epoch;
        await this.drainQsQueue({ processed: 0, errors: [] }, new Set());
        // The commit that moved the group on may still be on its way through the fan-out.
        if (this.row(conversationId).state?.groupContext.epoch === before)
          await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Runs operations one at a time: MLS states and queue positions must not be changed concurrently. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private get user(): UserId {
    return { uuid: this.account.userUuid, domain: this.account.domain };
  }

  private get clientKey(): SigningKey {
    return SigningKey.fromSeed(this.account.clientKeySeed);
  }

  private get credential(): ClientCredentialT {
    return ClientCredential.decode(this.account.clientCredential);
  }

  private get friendshipPackage(): FriendshipPackage {
    return {
      friendshipToken: this.account.friendshipToken,
      friendshipEncryptionKey: this.account.friendshipEncryptionKey,
      userProfileKey: this.account.profileKey,
    };
  }

  /** A fresh sealed queue config naming this client's QS queue (what the DS stores per member). */
  private qsReference(): common.QsReference {
    return {
      domain: this.account.domain,
      sealedQueueConfig: sealQueueConfig({
        qsKey: HpkePublicKey.fromBytes(this.account.qsConfigKey),
        domain: this.account.domain,
        clientRecordId: this.account.qsClientId,
        recordKey: SigningKey.fromSeed(this.account.qsClientKeySeed),
      }),
    };
  }

  /** A new leaf: fresh signature key, a fresh pseudonym (unlinkable across groups), a KeyPackage. */
  private async newLeaf(lastResort = false): Promise<NewLeaf> {
    const leafKey = SigningKey.generate();
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: this.clientKey,
      clientCredential: this.credential,
      leafKey: leafKey.verifyingKey,
      expiration: expirationFrom(Date.now(), 60 * DAY),
    });
    const kp = await createKeyPackage({
      cipherSuite: this.cs,
      credential: { credentialType: "basic", identity: leaf.bytes },
      queueConfig: common.QsReference.encode(this.qsReference()).finish(),
      lastResort,
      lifetimeSeconds: 59 * 24 * 3600,
      signatureKeyPair: { signKey: leafKey.exportSeed(), publicKey: leafKey.publicKey },
    });
    return {
      leafKey,
      leaf,
      signatureEncryptionKey,
      keyPackage: kp.publicPackage,
      privateKeyPackage: kp.privatePackage,
    };
  }

  private async createGroup(
    kind: "group" | "connection",
    title: string,
    peer: string | null,
  ): Promise<ConversationRow> {
    const { groupId } = await this.transport.delivery.requestGroupId({});
    if (groupId === undefined) throw new Error("the DS returned no group id");
    const leaf = await this.newLeaf();
    const { state, groupInfo } = await createPhoenixGroup({
      cipherSuite: this.cs,
      groupId: mlsGroupId(groupId),
      keyPackage: leaf.keyPackage,
      privateKeyPackage: leaf.privateKeyPackage,
      roles: [{ subject: { kind: "pseudonym", pseudonym: leaf.leaf.identity }, role: "admin" }],
    });
    const earKey = generateAeadKey();
    const credentialKey = generateAeadKey();
    const profileKeyKey = kind === "connection" ? credentialKey : generateAeadKey();
    await this.transport.delivery.createGroup({
      signed: await signRequest(
        delivery.CreateGroupTbs,
        DS.createGroup,
        {
          groupId,
          ratchetTree: encodeRatchetTree(state.ratchetTree),
          groupInfo,
          creatorClientInfo: sealClientInfo(
            credentialKey,
            "group",
            leaf.leaf.bytes,
            this.credential,
            leaf.signatureEncryptionKey,
          ),
          creatorQueue: this.qsReference(),
          encryptedUserProfileKey: encryptUserProfileKey(profileKeyKey, this.user, this.account.profileKey),
        },
        leaf.leafKey,
        { $case: "leafIndex", value: 0 },
      ),
      groupStateEarKey: earKey,
    });
    const id = toHex(mlsGroupId(groupId));
    this.store.transaction(() => {
      this.insertConversation({
        id,
        groupId,
        kind,
        title,
        earKey,
        credentialKey,
        profileKeyKey,
        state,
        leaf,
        peerUserId: peer,
      });
      this.store.db.insert(t.members).values({ conversationId: id, leafIndex: 0, userId: this.userId }).run();
    });
    return this.row(id);
  }

  private async sendApp(c: ConversationRow, content: Parameters<typeof encodeAppContent>[0]): Promise<void> {
    const { newState, message } = await encryptMessage(this.stateOf(c), this.cs, encodeAppContent(content));
    await this.transport.delivery.sendMessage({
      signed: await this.dsSigned(c, delivery.SendMessageTbs, DS.sendMessage, {
        groupId: c.groupId,
        message,
        suppressNotifications: false,
      }),
      groupStateEarKey: c.earKey,
    });
    this.saveState(c.id, newState);
  }

  /**
   * Brings the members table in line with the group's tree after a commit: new leaves are named
   * by the client infos that came with the commit, blank ones are gone. Writes system messages.
   */
  private applyMembership(
    c: ConversationRow,
    state: ClientState,
    infos: Uint8Array[],
    committer: string | undefined,
  ): void {
    const before = this.store.db.select().from(t.members).where(eq(t.members.conversationId, c.id)).all();
    const beforeUsers = new Set(before.map((m) => m.userId));
    const leaves = leafIdentities(state);
    for (const m of before) if (!leaves.has(m.leafIndex)) this.deleteMember(c.id, m.leafIndex);
    const known = new Set(before.map((m) => m.leafIndex));
    for (const [leafIndex, identity] of leaves) {
      if (known.has(leafIndex)) continue;
      let user: string | undefined;
      for (const info of infos) {
        try {
          const opened = openClientInfo(c.credentialKey, "group", identity, info);
          user = formatUserId(opened.clientCredential.clientId.userId);
          break;
        } catch {
          // belongs to another leaf
        }
      }
      if (user !== undefined)
        this.store.db.insert(t.members).values({ conversationId: c.id, leafIndex, userId: user }).run();
    }
    const after = new Set(
      this.store.db
        .select()
        .from(t.members)
        .where(eq(t.members.conversationId, c.id))
        .all()
        .map((m) => m.userId),
    );
    const by = committer ?? "someone";
    const mine = committer === this.userId;
    for (const u of after)
      if (!beforeUsers.has(u) && u !== this.userId) {
        const text = c.kind === "connection" ? `${u} joined` : `${by} added ${u}`;
        this.insertMessage(c.id, "system", committer, text, mine);
      }
    for (const u of beforeUsers)
      if (!after.has(u)) {
        const left = this.leavingSet(c.id).delete(u);
        this.insertMessage(c.id, "system", committer, left ? `${u} left` : `${by} removed ${u}`, mine);
      }
  }

  private deleteMember(id: string, leafIndex: number): void {
    this.store.db
      .delete(t.members)
      .where(and(eq(t.members.conversationId, id), eq(t.members.leafIndex, leafIndex)))
      .run();
  }

  private leavingSet(id: string): Set<string> {
    let s = this.leaving.get(id);
    if (s === undefined) {
      s = new Set();
      this.leaving.set(id, s);
    }
    return s;
  }

  /** Opens a member's encrypted client info and checks it belongs to the leaf; its user id. */
  private userOfClientInfo(
    state: ClientState,
    leafIndex: number,
    info: Uint8Array,
    credentialKey: Uint8Array,
  ): string | undefined {
    const identity = leafIdentities(state).get(leafIndex);
    if (identity === undefined || info.length === 0) return undefined;
    const opened = openClientInfo(credentialKey, "group", identity, info);
    const credential = this.verifier.verifyClientCredential(opened.clientCredential);
    LeafCredential.decode(identity).verifyWith(credential, opened.signatureEncryptionKey);
    return formatUserId(credential.clientId.userId);
  }

  private memberAt(id: string, leafIndex: number): string | undefined {
    return this.store.db
      .select()
      .from(t.members)
      .where(and(eq(t.members.conversationId, id), eq(t.members.leafIndex, leafIndex)))
      .get()?.userId;
  }

  private leavesOf(id: string, userIds: readonly string[]): number[] {
    return this.store.db
      .select()
      .from(t.members)
      .where(eq(t.members.conversationId, id))
      .all()
      .filter((m) => userIds.includes(m.userId))
      .map((m) => m.leafIndex);
  }

  private upsertContact(userId: string, fp: FriendshipPackage, conversationId: string): void {
    const value = buf(encodeFriendshipPackage(fp));
    this.store.db
      .insert(t.contacts)
      .values({ userId, friendshipPackage: value, conversationId })
      .onConflictDoUpdate({ target: t.contacts.userId, set: { friendshipPackage: value, conversationId } })
      .run();
  }

  private async refreshProfile(userId: string): Promise<void> {
    const c = this.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
    if (c === undefined) return;
    const fp = decodeFriendshipPackage(u8(c.friendshipPackage));
    const name = await this.fetchDisplayName(parseUserId(userId), fp.userProfileKey).catch(() => undefined);
    if (name === undefined) return;
    this.store.transaction(() => {
      this.store.db.update(t.contacts).set({ displayName: name }).where(eq(t.contacts.userId, userId)).run();
      this.store.db
        .update(t.conversations)
        .set({ title: name })
        .where(and(eq(t.conversations.id, c.conversationId), eq(t.conversations.kind, "connection")))
        .run();
    });
  }

  private async fetchDisplayName(userId: UserId, profileKey: Uint8Array): Promise<string | undefined> {
    const res = await this.transport.auth.getUserProfile({
      userId: wireUserId(userId),
      keyIndex: userProfileKeyIndex(profileKey, userId),
    });
    const profile = JSON.parse(
      new TextDecoder().decode(decryptUserProfile(profileKey, userId, res.encryptedUserProfile)),
    ) as {
      displayName?: unknown;
    };
    return typeof profile.displayName === "string" ? profile.displayName : undefined;
  }

  private insertConversation(c: {
    id: string;
    groupId: common.QualifiedGroupId;
    kind: "group" | "connection";
    title: string;
    earKey: Uint8Array;
    credentialKey: Uint8Array;
    profileKeyKey: Uint8Array;
    state: ClientState;
    leaf: {
      leafKey: SigningKey;
      leafCredential?: Uint8Array;
      leaf?: LeafCredential;
      signatureEncryptionKey: Uint8Array;
    };
    peerUserId: string | null;
  }): void {
    const leafCredential = c.leaf.leafCredential ?? c.leaf.leaf?.bytes;
    if (leafCredential === undefined) throw new Error("leaf credential missing");
    this.store.db
      .insert(t.conversations)
      .values({
        id: c.id,
        groupUuid: buf(c.groupId.uuid),
        groupDomain: c.groupId.domain,
        kind: c.kind,
        title: c.title,
        status: "active",
        earKey: buf(c.earKey),
        credentialKey: buf(c.credentialKey),
        profileKeyKey: buf(c.profileKeyKey),
        mlsState: buf(encodeClientState(c.state)),
        leafSeed: buf(c.leaf.leafKey.exportSeed()),
        leafCredential: buf(leafCredential),
        signatureEncryptionKey: buf(c.leaf.signatureEncryptionKey),
        peerUserId: c.peerUserId,
        createdAt: Date.now(),
      })
      .run();
  }

  private insertMessage(
    id: string,
    kind: "text" | "system",
    sender: string | undefined,
    body: string,
    read: boolean,
  ): void {
    this.store.db
      .insert(t.messages)
      .values({ conversationId: id, kind, senderUserId: sender ?? null, body, sentAt: Date.now(), read })
      .run();
  }

  private saveState(id: string, state: ClientState): void {
    this.store.db
      .update(t.conversations)
      .set({ mlsState: buf(encodeClientState(state)) })
      .where(eq(t.conversations.id, id))
      .run();
  }

  private setInactive(id: string): void {
    this.store.db.update(t.conversations).set({ status: "inactive" }).where(eq(t.conversations.id, id)).run();
  }

  private row(id: string): ConversationRow {
    const r = this.store.db.select().from(t.conversations).where(eq(t.conversations.id, id)).get();
    if (r === undefined) throw new UnknownConversationError(`no conversation ${id}`);
    return {
      id: r.id,
      groupId: { uuid: u8(r.groupUuid), domain: r.groupDomain },
      kind: r.kind,
      title: r.title,
      status: r.status,
      earKey: u8(r.earKey),
      credentialKey: u8(r.credentialKey),
      profileKeyKey: u8(r.profileKeyKey),
      state: r.mlsState === null ? undefined : decodeClientState(u8(r.mlsState)),
      leafKey: SigningKey.fromSeed(u8(r.leafSeed)),
      leafCredential: u8(r.leafCredential),
      signatureEncryptionKey: u8(r.signatureEncryptionKey),
      peerUserId: r.peerUserId,
    };
  }

  private activeRow(id: string): ConversationRow {
    const c = this.row(id);
    if (c.status !== "active") throw new ConversationInactiveError(`conversation ${id} is no longer active`);
    return c;
  }

  private stateOf(c: ConversationRow): ClientState {
    if (c.state === undefined) throw new ConversationInactiveError(`conversation ${c.id} has no group state`);
    return c.state;
  }

  private leafOf(c: ConversationRow): number {
    return this.stateOf(c).privatePath.leafIndex;
  }

  private conversationView(id: string): Conversation {
    const c = this.store.db.select().from(t.conversations).where(eq(t.conversations.id, id)).get();
    if (c === undefined) throw new UnknownConversationError(`no conversation ${id}`);
    const members = [
      ...new Set(
        this.store.db
          .select()
          .from(t.members)
          .where(eq(t.members.conversationId, id))
          .all()
          .map((m) => m.userId),
      ),
    ];
    const unread = this.store.db
      .select()
      .from(t.messages)
      .where(and(eq(t.messages.conversationId, id), eq(t.messages.read, false)))
      .all().length;
    return {
      id,
      kind: c.kind,
      title: c.title,
      status: c.status,
      members: c.status === "active" ? members : [],
      unread,
    };
  }

  private asSigned<T extends { header: common.RequestHeader | undefined }>(
    type: Parameters<typeof signRequest<T>>[0],
    method: { path: string },
    body: Omit<T, "header">,
  ): Promise<common.Signed> {
    const sender = {
      $case: "client" as const,
      value: { user: wireUserId(this.user), clientUuid: this.account.clientUuid },
    };
    return signRequest(type, method, body, this.clientKey, sender);
  }

  private qsSigned<T extends { header: common.RequestHeader | undefined }>(
    type: Parameters<typeof signRequest<T>>[0],
    method: { path: string },
    body: Omit<T, "header">,
  ): Promise<common.Signed> {
    return signRequest(type, method, body, SigningKey.fromSeed(this.account.qsClientKeySeed), {
      $case: "qsClientId",
      value: this.account.qsClientId,
    });
  }

  private dsSigned<T extends { header: common.RequestHeader | undefined }>(
    c: ConversationRow,
    type: Parameters<typeof signRequest<T>>[0],
    method: { path: string },
    body: Omit<T, "header">,
  ): Promise<common.Signed> {
    return signRequest(type, method, body, c.leafKey, { $case: "leafIndex", value: this.leafOf(c) });
  }
}

async function fetchVerifier(transport: Transport, domain: string): Promise<CredentialVerifier> {
  const res = await transport.auth.getAsCredentials({ domain });
  return verifierFrom({
    roots: res.asCredentials,
    intermediates: res.asIntermediateCredentials,
    revoked: res.revokedFingerprints,
  });
}

function profileBytes(displayName: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ displayName }));
}

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Leaf index → leaf credential bytes (MLS Basic identity) of every non-blank leaf. */
function leafIdentities(state: ClientState): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  state.ratchetTree.forEach((node, i) => {
    if (i % 2 === 0 && node?.nodeType === "leaf" && node.leaf.credential.credentialType === "basic")
      out.set(i / 2, node.leaf.credential.identity);
  });
  return out;
}

function safeCommitAad(aad: Uint8Array | undefined): delivery.CommitAad | undefined {
  if (aad === undefined || aad.length === 0) return undefined;
  try {
    return delivery.CommitAad.decode(aad);
  } catch {
    return undefined;
  }
}

/** A verified connection offer as kept until the user decides. */
interface StoredOffer {
  senderCredential: ClientCredentialT;
  groupId: Uint8Array;
  earKey: Uint8Array;
  credentialKey: Uint8Array;
  friendshipPackage: FriendshipPackage;
}

function encodeStoredOffer(o: StoredOffer): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      senderCredential: toB64(o.senderCredential.bytes),
      groupId: toB64(o.groupId),
      earKey: toB64(o.earKey),
      credentialKey: toB64(o.credentialKey),
      friendshipPackage: toB64(encodeFriendshipPackage(o.friendshipPackage)),
    }),
  );
}

function decodeStoredOffer(bytes: Uint8Array): StoredOffer {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string>;
  return {
    senderCredential: ClientCredential.decode(fromB64(j.senderCredential ?? "")),
    groupId: fromB64(j.groupId ?? ""),
    earKey: fromB64(j.earKey ?? ""),
    credentialKey: fromB64(j.credentialKey ?? ""),
    friendshipPackage: decodeFriendshipPackage(fromB64(j.friendshipPackage ?? "")),
  };
}

function encodePrivateKeyPackage(p: PrivateKeyPackage): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      initPrivateKey: toB64(p.initPrivateKey),
      hpkePrivateKey: toB64(p.hpkePrivateKey),
      signaturePrivateKey: toB64(p.signaturePrivateKey),
    }),
  );
}

function decodePrivateKeyPackage(bytes: Uint8Array): PrivateKeyPackage {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string>;
  return {
    initPrivateKey: fromB64(j.initPrivateKey ?? ""),
    hpkePrivateKey: fromB64(j.hpkePrivateKey ?? ""),
    signaturePrivateKey: fromB64(j.signaturePrivateKey ?? ""),
  };
}
