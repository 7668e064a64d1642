// PhoenixClient: the protocol behind a messaging app's verbs. Every state change is persisted to
// the SQLite store before the method returns, so a client re-opened from its store continues
// where it stopped (queue sequence numbers, queue ratchets, MLS group states, contacts). The
// flows live in ./flows (registration, connections, groups, receiving, profiles); this class
// runs them one at a time and answers the app's reads from the store.
import { asc, eq } from "drizzle-orm";
import { accountFromJson } from "./account.js";
import { ClientCore, ciphersuite } from "./core/client-core.js";
import { fetchVerifier } from "./core/trust.js";
import { NotRegisteredError } from "./errors.js";
import { describeEvent, parseStoredEvent } from "./events.js";
import * as connections from "./flows/connections.js";
import * as groups from "./flows/groups.js";
import * as keyUpdates from "./flows/key-updates.js";
import * as profiles from "./flows/profiles.js";
import * as receiving from "./flows/receiving.js";
import * as registration from "./flows/registration.js";
import type { Listener, ListenOptions } from "./listener.js";
import { ClientStore } from "./store/client-store.js";
import * as t from "./store/schema.js";
import type {
  ConnectionRequest,
  Contact,
  Conversation,
  ConversationEvent,
  Message,
  Person,
  PhoenixClientOptions,
  SyncResult,
} from "./types.js";

/** A Phoenix client: one device of one user, with its SQLite store. */
export class PhoenixClient {
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(private readonly core: ClientCore) {}

  /**
   * Registers a new user with this client on the homeserver of `domain`: AS credential, connection
   * packages, QS user and client records, AddPackages (one last resort), encrypted profile.
   */
  static async register(
    options: PhoenixClientOptions & { domain: string; displayName: string; inviteCode?: string },
  ): Promise<PhoenixClient> {
    return new PhoenixClient(await registration.register(options));
  }

  /** Re-opens a registered client from its store; NotRegisteredError on a store without account. */
  static async open(options: PhoenixClientOptions): Promise<PhoenixClient> {
    const store = ClientStore.open(options.storePath);
    const json = store.getJson<Record<string, string>>("account");
    if (json === undefined) {
      store.close();
      throw new NotRegisteredError(`no account in ${options.storePath}`);
    }
    try {
      const verifier = await fetchVerifier(options.transport);
      return new PhoenixClient(
        new ClientCore(options.transport, store, accountFromJson(json), await ciphersuite(), verifier),
      );
    } catch (error) {
      store.close();
      throw error;
    }
  }

  /** Deletes this user on the homeserver (AS and QS); the store keeps no account afterwards. */
  deleteAccount(): Promise<void> {
    return this.serial(() => registration.deleteAccount(this.core));
  }

  /** Waits for the running operation, then closes the store (the transport belongs to the caller). */
  async close(): Promise<void> {
    await this.lock.catch(() => undefined);
    this.core.store.close();
  }

  /** This user's id, `uuid@domain`. */
  get userId(): string {
    return this.core.identity.userId;
  }

  get displayName(): string {
    return this.core.account.displayName;
  }

  // Profile ------------------------------------------------------------------------------------

  /**
   * Changes the display name: the profile is re-encrypted under the profile key and merged on
   * the AS, then every conversation gets a "profile" notice so its members re-read it at once.
   * Notices that cannot be sent now are retried by the next sync.
   */
  setDisplayName(name: string): Promise<SyncResult> {
    return this.serial(() => profiles.setDisplayName(this.core, name));
  }

  /** Fetches every contact's profile from the AS and decrypts it with the profile key they shared. */
  refreshContactProfiles(): Promise<void> {
    return this.serial(() => profiles.refreshContactProfiles(this.core));
  }

  /**
   * Re-reads the profiles of everyone this client knows: contacts, and the members of every
   * active conversation (their profile keys from the DS). Notices make this rarely necessary.
   */
  refreshProfiles(): Promise<void> {
    return this.serial(() => profiles.refreshAllProfiles(this.core));
  }

  // Conversations ------------------------------------------------------------------------------

  /** Creates a group conversation with this client as its only member (and admin); its id. */
  createConversation(title: string): Promise<string> {
    return this.serial(() => groups.createConversation(this.core, title));
  }

  /** Sends a text message. */
  sendMessage(conversationId: string, text: string): Promise<void> {
    return this.serial(() => groups.sendMessage(this.core, conversationId, text));
  }

  /** Adds contacts (all their clients) to a group conversation. */
  invite(conversationId: string, userIds: readonly string[]): Promise<void> {
    return this.serial(() => groups.invite(this.core, conversationId, userIds));
  }

  /** Removes users (all their clients) from a group conversation. */
  remove(conversationId: string, userIds: readonly string[]): Promise<void> {
    return this.serial(() => groups.remove(this.core, conversationId, userIds));
  }

  /** Makes users admins of a group conversation (admins add and remove other users); admins only. */
  grantAdmin(conversationId: string, userIds: readonly string[]): Promise<void> {
    return this.serial(() => groups.grantAdmin(this.core, conversationId, userIds));
  }

  /** Refreshes this client's keys in a group (post-compromise security); membership stays. */
  updateKeys(conversationId: string): Promise<void> {
    return this.serial(async () => {
      await groups.updateKeys(this.core, conversationId);
      this.core.conversations.recordKeyUpdate(conversationId, Date.now());
    });
  }

  /**
   * Refreshes this client's keys in every active conversation where they are older than
   * `maxAgeMs` (default one week). `listen()` does this periodically; apps that only `sync()`
   * call it themselves.
   */
  updateStaleKeys(
    maxAgeMs: number = keyUpdates.DEFAULT_KEY_UPDATE_MAX_AGE_MS,
  ): Promise<keyUpdates.KeyUpdateResult> {
    return this.serial(() => keyUpdates.updateStaleKeys(this.core, maxAgeMs));
  }

  /**
   * Leaves a conversation: a self-remove proposal the DS stores; the next commit by another member
   * carries it, and this client sees the conversation inactive once that commit arrives.
   */
  leave(conversationId: string): Promise<void> {
    return this.serial(() => groups.leave(this.core, conversationId));
  }

  /** Deletes a group (admins): every other member is removed, then the DS forgets the group. */
  deleteConversation(conversationId: string): Promise<void> {
    return this.serial(() => groups.deleteConversation(this.core, conversationId));
  }

  // Connections --------------------------------------------------------------------------------

  /**
   * Asks `userId` (of any domain) to connect; UnknownUserError when the user does not exist,
   * FederationRefusedError when this homeserver and the user's domain do not federate.
   */
  connect(userId: string): Promise<void> {
    return this.serial(() => connections.connect(this.core, userId));
  }

  /**
   * Asks the owner of `handle` to connect; the handle is looked up on `domain` (default: this
   * user's homeserver). UnknownUserError when no such handle exists.
   */
  connectByHandle(handle: string, domain = ""): Promise<void> {
    return this.serial(() => connections.connectByHandle(this.core, handle, domain));
  }

  /** Accepts an incoming request: joins the connection group; both sides then have a contact. */
  acceptConnection(requestId: number): Promise<string> {
    return this.serial(() => connections.acceptConnection(this.core, requestId));
  }

  /**
   * Declines an incoming connection request; the requester is told (its request shows
   * "rejected"). UnknownRequestError when there is no such pending request.
   */
  rejectConnection(requestId: number): Promise<void> {
    return this.serial(() => connections.rejectConnection(this.core, requestId));
  }

  /** Claims a handle (the AS keeps only its hash) and publishes connection packages under it. */
  createHandle(handle: string): Promise<void> {
    return this.serial(() => connections.createHandle(this.core, handle));
  }

  /** The handles this client holds. */
  handles(): string[] {
    return this.core.queues.storedHandles().map((h) => h.handle);
  }

  // Receiving ----------------------------------------------------------------------------------

  /**
   * Fetches and processes everything queued for this client (connection offers, Welcomes, group
   * messages and commits), then commits self-remove proposals waiting in its groups.
   */
  sync(): Promise<SyncResult> {
    return this.serial(() => receiving.sync(this.core));
  }

  /**
   * Listens live on the QS queue and the AS connection queue, and refreshes this client's keys
   * in conversations where they are older than `keyUpdateMaxAgeMs` (checked at start and then
   * every quarter of that age, at most hourly); `stop()` the returned listener.
   */
  listen(options: ListenOptions = {}): Listener {
    const queues = receiving.listen(this.core, (fn) => this.serial(fn), options);
    const maxAge = options.keyUpdateMaxAgeMs ?? keyUpdates.DEFAULT_KEY_UPDATE_MAX_AGE_MS;
    if (maxAge <= 0) return queues;
    let round: Promise<void> = Promise.resolve();
    let stopped = false;
    const check = () => {
      round = this.updateStaleKeys(maxAge).then(
        (result) => {
          for (const e of result.errors) options.onError?.(new Error(`key update failed: ${e}`));
          if (result.updated.length > 0 && !stopped) options.onChange?.();
        },
        (error: unknown) => options.onError?.(error as Error),
      );
    };
    check();
    const timer = setInterval(check, Math.min(Math.max(maxAge / 4, 1000), 3_600_000));
    timer.unref();
    return {
      async stop() {
        stopped = true;
        clearInterval(timer);
        await Promise.all([queues.stop(), round]);
      },
    };
  }

  // Reads --------------------------------------------------------------------------------------

  /** Conversations, newest first. */
  conversations(): Conversation[] {
    return this.core.store.db
      .select()
      .from(t.conversations)
      .all()
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((c) => this.core.conversations.view(c.id));
  }

  /** One conversation (UnknownConversationError if there is none). */
  conversation(id: string): Conversation {
    return this.core.conversations.view(id);
  }

  /** Messages of a conversation in arrival order. */
  messages(conversationId: string): Message[] {
    this.core.conversations.row(conversationId);
    return this.core.store.db
      .select()
      .from(t.messages)
      .where(eq(t.messages.conversationId, conversationId))
      .orderBy(asc(t.messages.id))
      .all()
      .map((m) => {
        const stored = parseStoredEvent(m.event);
        const event: ConversationEvent | undefined =
          stored === undefined
            ? undefined
            : {
                type: stored.type,
                actor: stored.actor === undefined ? undefined : this.person(stored.actor),
                users: stored.users.map((u) => this.person(u)),
                previousName: stored.previousName,
              };
        return {
          id: m.id,
          kind: m.kind,
          sender: m.senderUserId ?? undefined,
          senderPerson: m.senderUserId === null ? undefined : this.person(m.senderUserId),
          body: event === undefined ? m.body : describeEvent(event),
          event,
          sentAt: new Date(m.sentAt),
          read: m.read,
        };
      });
  }

  /**
   * The display name of a user (a group member, contact or not; a connection requester; this
   * user) from the profile they shared; undefined while none could be read.
   */
  displayNameOf(userId: string): string | undefined {
    return this.core.profiles.nameOf(userId);
  }

  /** A user with its display name (see {@link displayNameOf}). */
  person(userId: string): Person {
    return { userId, displayName: this.core.profiles.nameOf(userId), self: userId === this.userId };
  }

  /** Marks every message of a conversation as read. */
  markRead(conversationId: string): void {
    this.core.conversations.row(conversationId);
    this.core.store.db
      .update(t.messages)
      .set({ read: true })
      .where(eq(t.messages.conversationId, conversationId))
      .run();
  }

  /** Connected users. */
  contacts(): Contact[] {
    return this.core.store.db
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
    return this.core.store.db
      .select()
      .from(t.connectionRequests)
      .all()
      .map((r) => ({
        id: r.id,
        direction: r.direction,
        userId: r.userId,
        displayName: this.core.profiles.nameOf(r.userId),
        status: r.status,
      }));
  }

  /**
   * Runs operations one at a time: MLS states and queue positions must not change concurrently.
   * An operation is over once what it stored is on disk.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const op = async () => {
      try {
        return await fn();
      } finally {
        await this.core.store.durable();
      }
    };
    const run = this.lock.then(op, op);
    this.lock = run.catch(() => undefined);
    return run;
  }
}
