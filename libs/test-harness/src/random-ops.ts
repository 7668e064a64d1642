// Randomized scenario driver: seeded random actions by real PhoenixClients (connect, create
// group, invite, remove, leave, send), each chosen from what the acting user's own client shows,
// against a model of what must result. It only talks to PhoenixClient, so it runs the same
// against one homeserver or a federation of several domains.
import type { Conversation, PhoenixClient } from "@phoenix/client";
import { EventuallyTimeoutError, eventually } from "@phoenix/runtime/testing";
import { Prng, RANDOM_ACTIONS_ENV, RANDOM_SEED_ENV } from "./random-prng.js";

/** One user of a randomized run. */
export interface RandomUser {
  /** Short name for logs (unique in the run). */
  name: string;
  domain: string;
  /** A registered client of this user; the driver never closes it. */
  client: PhoenixClient;
}

/** What the driver draws from. */
export type ActionKind = "connect" | "create" | "invite" | "remove" | "leave" | "send";

/** Options of {@link runRandomOps}. */
export interface RandomOpsOptions {
  seed: number;
  users: readonly RandomUser[];
  /** Number of actions to run. */
  actions: number;
  /** Relative weights of the action kinds (defaults: {@link DEFAULT_WEIGHTS}). */
  weights?: Partial<Record<ActionKind, number>>;
  /**
   * Probability that the driver does not wait for the members to see an invitation or removal
   * before the next action (default 0.5): later actions then start from stale views, as in an
   * app that was offline, and the client must catch up by itself.
   */
  lag?: number;
  /** Bound of each wait for clients to catch up (default 60 s). */
  settleTimeoutMs?: number;
  /** Bound of the final wait for every client to reach the expected state (default 180 s). */
  finalTimeoutMs?: number;
  /** Progress lines (each action as it runs). */
  log?: (line: string) => void;
}

/** What a run did. */
export interface RandomOpsReport {
  seed: number;
  /** How many actions of each kind ran. */
  counts: Record<ActionKind, number>;
  /** Every action, in order (`#n actor: what`). */
  actions: string[];
  messages: number;
  groups: number;
  connections: number;
}

/** A randomized run failed: the message names the seed, the step and the recent actions. */
export class RandomOpsError extends Error {
  override readonly name = "RandomOpsError";
}

/** Default relative weights of the action kinds. */
export const DEFAULT_WEIGHTS: Readonly<Record<ActionKind, number>> = {
  connect: 2,
  create: 1,
  invite: 3,
  remove: 1.5,
  leave: 1,
  send: 5,
};

const MAX_BATCH = 5;

interface ModelConversation {
  id: string;
  kind: "group" | "connection";
  title: string;
  /** Group creator (the only admin: only admins add or remove other users); none for connections. */
  admin: string | undefined;
  members: Set<string>;
  /** Everyone who was ever a member (ex-members must see the conversation inactive). */
  everMembers: Set<string>;
}

interface ModelMessage {
  body: string;
  conversationId: string;
  sender: string;
  /** The members when it was sent: exactly these receive it, once each. */
  recipients: Set<string>;
}

interface Actor {
  name: string;
  domain: string;
  userId: string;
  client: PhoenixClient;
}

/**
 * Runs `actions` seeded random actions by `users` and checks the outcome: after every client
 * synced to quiescence, each user's view of every conversation (member set, active or not)
 * matches the model — so all members agree — and every message reached exactly the members of
 * its conversation at send time, once each, and nobody else. Actions are drawn only from what
 * the actor's client shows (its contacts, conversations and members); invite and remove only by
 * the group's creator, its admin. Throws {@link RandomOpsError} naming the seed on any failure.
 */
export async function runRandomOps(options: RandomOpsOptions): Promise<RandomOpsReport> {
  const run = new RandomRun(options);
  try {
    await run.run();
  } catch (error) {
    throw run.failure(error);
  }
  return run.report();
}

class RandomRun {
  private readonly prng: Prng;
  private readonly users: Actor[];
  private readonly byId = new Map<string, Actor>();
  private readonly weights: Map<ActionKind, number>;
  private readonly settleTimeoutMs: number;
  private readonly finalTimeoutMs: number;
  private readonly lag: number;
  private readonly conversations = new Map<string, ModelConversation>();
  private readonly contacts = new Set<string>();
  private readonly messages: ModelMessage[] = [];
  private readonly log: string[] = [];
  private readonly counts: Record<ActionKind, number> = {
    connect: 0,
    create: 0,
    invite: 0,
    remove: 0,
    leave: 0,
    send: 0,
  };
  private step = 0;
  private phase = "setup";

  constructor(private readonly options: RandomOpsOptions) {
    this.prng = new Prng(options.seed);
    this.users = options.users.map((u) => ({
      name: u.name,
      domain: u.domain,
      userId: u.client.userId,
      client: u.client,
    }));
    for (const u of this.users) this.byId.set(u.userId, u);
    this.weights = new Map(
      Object.entries({ ...DEFAULT_WEIGHTS, ...options.weights }) as [ActionKind, number][],
    );
    this.settleTimeoutMs = options.settleTimeoutMs ?? 60_000;
    this.finalTimeoutMs = options.finalTimeoutMs ?? 180_000;
    this.lag = options.lag ?? 0.5;
  }

  async run(): Promise<void> {
    if (this.users.length < 2) throw new RandomOpsError("a randomized run needs at least two users");
    for (this.step = 1; this.step <= this.options.actions; this.step++) {
      this.phase = `action ${this.step}`;
      const actor = this.prng.pick(this.users);
      await this.act(actor);
      // Apps that happen to be open fetch what is waiting for them between the user's actions.
      for (const u of this.users) if (this.prng.chance(0.3)) await this.syncOnce(u);
    }
    this.phase = "final sync";
    await this.settleAll();
    this.phase = "final check";
    const problems = this.check();
    if (problems.length > 0)
      throw new RandomOpsError(
        `${problems.length} discrepancies between the clients and the model:\n  ${problems.slice(0, 40).join("\n  ")}`,
      );
  }

  report(): RandomOpsReport {
    return {
      seed: this.options.seed,
      counts: { ...this.counts },
      actions: [...this.log],
      messages: this.messages.length,
      groups: [...this.conversations.values()].filter((c) => c.kind === "group").length,
      connections: this.contacts.size,
    };
  }

  /** The error to throw: the cause with the seed, the phase and the last actions. */
  failure(error: unknown): RandomOpsError {
    const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const recent = this.log.slice(-15);
    return new RandomOpsError(
      [
        `randomized run failed (seed ${this.options.seed}, ${this.phase}): ${cause}`,
        `replay: ${RANDOM_SEED_ENV}=${this.options.seed} ${RANDOM_ACTIONS_ENV}=${this.options.actions}`,
        `last actions:`,
        ...recent.map((l) => `  ${l}`),
      ].join("\n"),
      { cause: error },
    );
  }

  // Choosing ------------------------------------------------------------------------------------

  /** Draws one action valid from `actor`'s own view and runs it (a no-op draw is redrawn). */
  private async act(actor: Actor): Promise<void> {
    const options = this.optionsOf(actor);
    const weights = new Map([...this.weights].filter(([kind]) => options.has(kind)));
    const kind = this.prng.weighted(weights);
    const run = options.get(kind);
    if (run === undefined) throw new Error(`no ${kind} option`);
    this.counts[kind]++;
    await run();
  }

  private optionsOf(actor: Actor): Map<ActionKind, () => Promise<void>> {
    const c = actor.client;
    const out = new Map<ActionKind, () => Promise<void>>();
    const contactIds = new Set(c.contacts().map((x) => x.userId));
    const pending = new Set(
      c
        .connectionRequests()
        .filter((r) => r.status === "pending")
        .map((r) => r.userId),
    );
    const strangers = this.users.filter(
      (u) => u !== actor && !contactIds.has(u.userId) && !pending.has(u.userId),
    );
    if (strangers.length > 0) out.set("connect", () => this.connect(actor, this.prng.pick(strangers)));
    out.set("create", () => this.create(actor));

    const active = c.conversations().filter((v) => v.status === "active");
    const groups = active.filter((v) => v.kind === "group");
    const administered = groups.filter((v) => this.conversations.get(v.id)?.admin === actor.userId);
    const invitable = administered
      .map((v) => ({ v, candidates: [...contactIds].filter((id) => !v.members.includes(id)) }))
      .filter((x) => x.candidates.length > 0);
    if (invitable.length > 0)
      out.set("invite", () => {
        const { v, candidates } = this.prng.pick(invitable);
        return this.invite(actor, v, this.prng.sample(candidates, this.prng.int(1, MAX_BATCH)));
      });
    const removable = administered
      .map((v) => ({ v, others: v.members.filter((id) => id !== actor.userId) }))
      .filter((x) => x.others.length > 0);
    if (removable.length > 0)
      out.set("remove", () => {
        const { v, others } = this.prng.pick(removable);
        return this.remove(actor, v, this.prng.sample(others, this.prng.int(1, MAX_BATCH)));
      });
    // A self-remove is only a proposal: another member must be there to commit it. (A lagging
    // view may still show members who are gone: the model rules those groups out.)
    const leavable = groups.filter(
      (v) => v.members.length > 1 && [...this.model(v.id).members].some((m) => m !== actor.userId),
    );
    if (leavable.length > 0) out.set("leave", () => this.leave(actor, this.prng.pick(leavable)));
    // Most messages go to groups, where membership changes make delivery interesting.
    if (active.length > 0)
      out.set("send", () =>
        this.send(actor, this.prng.pick(groups.length > 0 && this.prng.chance(0.75) ? groups : active)),
      );
    return out;
  }

  // Actions ---------------------------------------------------------------------------------------

  private note(actor: Actor, what: string): void {
    const line = `#${this.step} ${label(actor)}: ${what}`;
    this.log.push(line);
    this.options.log?.(line);
  }

  private async connect(actor: Actor, target: Actor): Promise<void> {
    this.note(actor, `connect to ${label(target)}`);
    await actor.client.connect(target.userId);
    // The target's app shows the request and the user accepts it.
    await this.settle([target], (u) => incomingRequest(u, actor) !== undefined, "the connection request");
    const request = incomingRequest(target, actor);
    if (request === undefined) throw new Error("the connection request vanished");
    const conversationId = await target.client.acceptConnection(request);
    this.contacts.add(pairKey(actor.userId, target.userId));
    const members = new Set([actor.userId, target.userId]);
    this.conversations.set(conversationId, {
      id: conversationId,
      kind: "connection",
      title: "",
      admin: undefined,
      members,
      everMembers: new Set(members),
    });
    await this.settle(
      [actor, target],
      (u) =>
        u.client.contacts().some((x) => x.conversationId === conversationId) &&
        this.viewMatches(u, conversationId),
      "the new contact",
    );
  }

  private async create(actor: Actor): Promise<void> {
    const title = `g${this.step}`;
    this.note(actor, `create group ${title}`);
    const id = await actor.client.createConversation(title);
    this.conversations.set(id, {
      id,
      kind: "group",
      title,
      admin: actor.userId,
      members: new Set([actor.userId]),
      everMembers: new Set([actor.userId]),
    });
  }

  private async invite(actor: Actor, view: Conversation, ids: string[]): Promise<void> {
    const model = this.model(view.id);
    this.note(actor, `invite ${ids.map((id) => this.nameOf(id)).join(", ")} to ${model.title}`);
    await actor.client.invite(view.id, ids);
    for (const id of ids) {
      model.members.add(id);
      model.everMembers.add(id);
    }
    if (!this.prng.chance(this.lag)) await this.settleConversation(model, "the invitation");
  }

  private async remove(actor: Actor, view: Conversation, ids: string[]): Promise<void> {
    const model = this.model(view.id);
    this.note(actor, `remove ${ids.map((id) => this.nameOf(id)).join(", ")} from ${model.title}`);
    await actor.client.remove(view.id, ids);
    for (const id of ids) model.members.delete(id);
    if (!this.prng.chance(this.lag)) await this.settleConversation(model, "the removal");
  }

  private async leave(actor: Actor, view: Conversation): Promise<void> {
    const model = this.model(view.id);
    this.note(actor, `leave ${model.title}`);
    if (await this.refusedAsRemoved(actor, model, () => actor.client.leave(view.id))) return;
    // The self-remove proposal takes effect with the next commit: the other members' apps commit
    // it when they sync. Until then the leaver is still a member (and would receive messages).
    model.members.delete(actor.userId);
    await this.settleConversation(model, "the leave");
  }

  private async send(actor: Actor, view: Conversation): Promise<void> {
    const model = this.model(view.id);
    const body = `m${this.step} ${actor.name} ${model.kind === "group" ? model.title : "direct"} s${this.options.seed}`;
    this.note(actor, `send "${body}"`);
    if (await this.refusedAsRemoved(actor, model, () => actor.client.sendMessage(view.id, body))) return;
    this.messages.push({
      body,
      conversationId: view.id,
      sender: actor.userId,
      recipients: new Set(model.members),
    });
    // No wait: messages pile up in queues across later commits; the final check counts them.
  }

  /**
   * Runs an action of a member. One whose app has not yet seen its removal still shows the
   * conversation active: its client must catch up and refuse with ConversationInactiveError
   * (true), sending nothing. A current member's action must succeed (false).
   */
  private async refusedAsRemoved(
    actor: Actor,
    model: ModelConversation,
    action: () => Promise<void>,
  ): Promise<boolean> {
    if (model.members.has(actor.userId)) {
      await action();
      return false;
    }
    try {
      await action();
    } catch (error) {
      if (error instanceof Error && error.name === "ConversationInactiveError") {
        this.note(actor, "refused: the client learned it was removed");
        return true;
      }
      throw error;
    }
    throw new Error(
      `${label(actor)} acted in ${model.title}, which it was removed from, and was not refused`,
    );
  }

  // Waiting ---------------------------------------------------------------------------------------

  private async syncOnce(u: Actor): Promise<number> {
    const r = await u.client.sync();
    // Every queued message must be processable: a skipped one is a bug, not something to wait out.
    if (r.errors.length > 0) throw new Error(`${label(u)}: sync reported errors: ${r.errors.join("; ")}`);
    return r.processed;
  }

  /** Syncs each of `users` until `done` holds for it (bounded by the settle timeout). */
  private async settle(users: readonly Actor[], done: (u: Actor) => boolean, what: string): Promise<void> {
    let waiting = [...users];
    await eventually(
      async () => {
        for (const u of waiting) await this.syncOnce(u);
        waiting = waiting.filter((u) => !done(u));
        return waiting.length === 0;
      },
      {
        timeoutMs: this.settleTimeoutMs,
        intervalMs: 100,
        message: () =>
          `${what}: ${waiting.map((u) => `${label(u)} sees ${this.describeView(u)}`).join("; ")}`,
      },
    );
  }

  /** Waits until everyone who ever was in `model` sees it as the model says. */
  private settleConversation(model: ModelConversation, what: string): Promise<void> {
    const involved = [...model.everMembers].map((id) => this.user(id));
    return this.settle(involved, (u) => this.viewMatches(u, model.id), `${what} in ${model.title}`);
  }

  /**
   * The final catch-up: every client syncs until its views and messages match the model, then
   * until a whole round of syncs finds nothing more (late duplicates would show up there).
   */
  private async settleAll(): Promise<void> {
    let waiting = [...this.users];
    try {
      await eventually(
        async () => {
          for (const u of waiting) await this.syncOnce(u);
          waiting = waiting.filter((u) => this.problemsOf(u).length > 0);
          return waiting.length === 0;
        },
        { timeoutMs: this.finalTimeoutMs, intervalMs: 200 },
      );
    } catch (error) {
      if (error instanceof EventuallyTimeoutError) return; // the check reports what is missing
      throw error;
    }
    // Then rounds of syncs until two in a row find nothing; the pause lets late deliveries land.
    for (let quiet = 0, rounds = 0; quiet < 2 && rounds < 20; rounds++) {
      let processed = 0;
      for (const u of this.users) processed += await this.syncOnce(u);
      quiet = processed === 0 ? quiet + 1 : 0;
      await sleep(200);
    }
  }

  // Checking --------------------------------------------------------------------------------------

  private viewMatches(u: Actor, id: string): boolean {
    return this.conversationProblems(u, this.model(id)).length === 0;
  }

  private conversationProblems(u: Actor, model: ModelConversation): string[] {
    const view = u.client.conversations().find((v) => v.id === model.id);
    const who = `${label(u)} in ${model.kind === "group" ? model.title : `connection ${this.connectionName(model)}`}`;
    if (model.members.has(u.userId)) {
      if (view === undefined) return [`${who}: conversation missing`];
      if (view.status !== "active") return [`${who}: ${view.status}, expected active`];
      const expected = [...model.members].sort();
      const seen = [...view.members].sort();
      if (expected.join() !== seen.join())
        return [`${who}: members ${this.names(seen)}, expected ${this.names(expected)}`];
      return [];
    }
    if (model.everMembers.has(u.userId)) {
      if (view === undefined) return [`${who}: conversation missing (expected inactive)`];
      if (view.status !== "inactive")
        return [`${who}: ${view.status} with ${this.names(view.members)}, expected inactive`];
      return [];
    }
    return view === undefined ? [] : [`${who}: has a conversation it was never a member of`];
  }

  /** Everything `u`'s client shows that differs from the model. */
  private problemsOf(u: Actor): string[] {
    const problems: string[] = [];
    for (const model of this.conversations.values()) problems.push(...this.conversationProblems(u, model));
    for (const view of u.client.conversations())
      if (!this.conversations.has(view.id)) problems.push(`${label(u)}: unknown conversation ${view.id}`);

    const expectedContacts = this.users
      .filter((o) => o !== u && this.contacts.has(pairKey(u.userId, o.userId)))
      .map((o) => o.userId)
      .sort();
    const contacts = u.client
      .contacts()
      .map((x) => x.userId)
      .sort();
    if (expectedContacts.join() !== contacts.join())
      problems.push(
        `${label(u)}: contacts ${this.names(contacts)}, expected ${this.names(expectedContacts)}`,
      );

    // Text messages, by body: each one the model sent to u exactly once, nothing else.
    const received = new Map<string, { conversationId: string; sender: string | undefined }[]>();
    for (const view of u.client.conversations())
      for (const m of u.client.messages(view.id)) {
        if (m.kind !== "text") continue;
        const list = received.get(m.body) ?? [];
        list.push({ conversationId: view.id, sender: m.sender });
        received.set(m.body, list);
      }
    for (const m of this.messages) {
      const got = received.get(m.body) ?? [];
      received.delete(m.body);
      const expected = m.recipients.has(u.userId) ? 1 : 0;
      if (got.length !== expected)
        problems.push(`${label(u)}: received "${m.body}" ${got.length} times, expected ${expected}`);
      for (const g of got) {
        if (g.conversationId !== m.conversationId)
          problems.push(`${label(u)}: "${m.body}" in the wrong conversation ${g.conversationId}`);
        if (g.sender !== m.sender)
          problems.push(`${label(u)}: "${m.body}" from ${g.sender}, expected ${this.nameOf(m.sender)}`);
      }
    }
    for (const body of received.keys()) problems.push(`${label(u)}: unexpected message "${body}"`);
    return problems;
  }

  private check(): string[] {
    const problems = this.users.flatMap((u) => this.problemsOf(u));
    // Pairwise agreement follows from agreement with the model; say so when members disagree.
    for (const model of this.conversations.values()) {
      const views = [...model.members].map((m) => {
        const v = this.user(m)
          .client.conversations()
          .find((x) => x.id === model.id);
        return v === undefined ? "missing" : `${v.status}:${[...v.members].sort().join()}`;
      });
      if (new Set(views).size > 1)
        problems.push(`members of ${model.title || this.connectionName(model)} disagree among themselves`);
    }
    return problems;
  }

  // Names -----------------------------------------------------------------------------------------

  private model(conversationId: string): ModelConversation {
    const m = this.conversations.get(conversationId);
    if (m === undefined) throw new Error(`conversation ${conversationId} is not in the model`);
    return m;
  }

  private user(userId: string): Actor {
    const u = this.byId.get(userId);
    if (u === undefined) throw new Error(`user ${userId} is not in the run`);
    return u;
  }

  private nameOf(userId: string | undefined): string {
    if (userId === undefined) return "nobody";
    const u = this.byId.get(userId);
    return u === undefined ? userId : label(u);
  }

  private names(ids: readonly string[]): string {
    return `[${ids.map((i) => this.nameOf(i)).join(", ")}]`;
  }

  private connectionName(model: ModelConversation): string {
    return [...model.everMembers].map((i) => this.nameOf(i)).join("-");
  }

  private describeView(u: Actor): string {
    return (
      u.client
        .conversations()
        .map(
          (v) =>
            `${this.conversations.get(v.id)?.title || v.id.slice(0, 8)}:${v.status}${this.names(v.members)}`,
        )
        .join(" ") || "no conversations"
    );
  }
}

function label(u: Actor): string {
  return `${u.name}@${u.domain}`;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a} ${b}` : `${b} ${a}`;
}

function incomingRequest(u: Actor, from: Actor): number | undefined {
  return u.client
    .connectionRequests()
    .find((r) => r.direction === "incoming" && r.userId === from.userId && r.status === "pending")?.id;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
