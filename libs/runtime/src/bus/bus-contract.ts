import { createHook } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../testing/eventually.js";
import {
  BusClosedError,
  InvalidSubjectError,
  StreamConfigError,
  StreamFullError,
  StreamNotFoundError,
} from "./errors.js";
import type { Bus, BusLifecycleOptions, BusMessage, ConsumerOptions, Subscription } from "./types.js";

/**
 * The behaviour every `Bus` implementation must show, as vitest tests. A test file calls
 * `describeBusContract` with a target; every bus the target opens must share one backend (one
 * NATS server, one database), as replicas of a service do.
 */
export interface BusContractTarget {
  /** Opens another bus instance on the shared backend (a second connection / replica). */
  open(options?: BusLifecycleOptions): Promise<Bus>;
  /** Removes a stream a test created, if the backend outlives the test run (NATS). */
  removeStream?(name: string): Promise<void>;
  /** How many messages the backend's store holds for `stream` (what a copy of it would yield). */
  storedMessages(stream: string): Promise<number>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

/** Short ack wait for the redelivery cases; everywhere else long enough never to fire. */
const SHORT_ACK_WAIT_MS = 500;
const LONG_ACK_WAIT_MS = 20_000;
/** How the tests wait for a delivery or a store count (bounded). */
const WAIT = { timeoutMs: 15_000, intervalMs: 10 };

/**
 * Lets time pass on purpose: to show that nothing more arrives (a redelivery, a duplicate), to
 * let a message age past a stream's limit, or to make a handler slow. Waiting *for* something
 * uses `eventually`.
 */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Resource types that keep a Node process alive. */
const LIVE_TYPES = new Set(["Timeout", "Immediate", "TCPWRAP", "TCPCONNECTWRAP", "PIPEWRAP", "FSEVENTWRAP"]);
/**
 * Resources created by the backend's own client (the test's database pool or PGlite) or by the
 * test runner live as long as those do; only the bus's own must be gone after `close()`.
 */
const FOREIGN = [
  "node_modules/@vitest/",
  "node_modules/vitest/",
  "node_modules/@electric-sql/pglite/",
  "node_modules/pg-pool/",
  "node_modules/pg/",
];

/**
 * Records handles (timers, sockets) created from now on; `stop()` returns those still alive,
 * each with the stack that created it, leaving out the backend's and the test runner's own.
 */
function trackResources(): { stop(): string[] } {
  const alive = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      if (!LIVE_TYPES.has(type)) return;
      const stack = new Error().stack ?? "";
      if (FOREIGN.some((path) => stack.includes(path))) return;
      alive.set(id, `${type}${stack.split("\n").slice(6, 14).join("\n")}`);
    },
    destroy(id) {
      alive.delete(id);
    },
  });
  hook.enable();
  return {
    stop() {
      hook.disable();
      return [...alive.values()];
    },
  };
}

/** Registers the bus contract tests for `target` under `describe(name)`. */
export function describeBusContract(name: string, target: BusContractTarget): void {
  describe(name, () => {
    const opened: Bus[] = [];
    const streamsCreated: string[] = [];

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((bus) => bus.close()));
      for (const stream of streamsCreated.splice(0)) await target.removeStream?.(stream);
    });

    async function open(options?: BusLifecycleOptions): Promise<Bus> {
      const bus = await target.open(options);
      opened.push(bus);
      return bus;
    }

    /** A stream of its own for one test: unique name and subjects, so tests never interfere. */
    async function freshStream(bus: Bus): Promise<{ stream: string; prefix: string }> {
      const prefix = `bc${randomBytes(6).toString("hex")}`;
      const stream = `S_${prefix}`;
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], duplicateWindowMs: 60_000 });
      streamsCreated.push(stream);
      return { stream, prefix };
    }

    function collect(into: BusMessage[]): (msg: BusMessage) => Promise<void> {
      return async (msg) => {
        into.push(msg);
      };
    }

    function consumerOptions(stream: string, extra: Partial<ConsumerOptions> = {}): ConsumerOptions {
      return {
        stream,
        durable: `d_${randomBytes(4).toString("hex")}`,
        ackWaitMs: LONG_ACK_WAIT_MS,
        ...extra,
      };
    }

    it("delivers published messages with their id, headers and sequence, and acks them", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const acks = [];
      for (let i = 1; i <= 3; i++) {
        acks.push(
          await bus.publish(`${prefix}.item`, bytes(`m${i}`), { id: `id-${i}`, headers: { n: `${i}` } }),
        );
      }
      expect(acks.map((a) => a.stream)).toEqual([stream, stream, stream]);
      expect(acks.map((a) => a.duplicate)).toEqual([false, false, false]);
      expect(acks[1]!.seq).toBeGreaterThan(acks[0]!.seq);
      expect(acks[2]!.seq).toBeGreaterThan(acks[1]!.seq);

      const received: BusMessage[] = [];
      const options = consumerOptions(stream);
      const sub = await bus.consume(options, collect(received));
      await eventually(() => received.length === 3, { ...WAIT, message: "3 messages" });
      expect(received.map((m) => text(m.data))).toEqual(["m1", "m2", "m3"]);
      expect(received.map((m) => m.id)).toEqual(["id-1", "id-2", "id-3"]);
      expect(received.map((m) => m.headers)).toEqual([{ n: "1" }, { n: "2" }, { n: "3" }]);
      expect(received.map((m) => m.seq)).toEqual(acks.map((a) => a.seq));
      expect(received.every((m) => m.subject === `${prefix}.item` && m.deliveryCount === 1)).toBe(true);
      // Plain Uint8Array end to end (no Buffer views leaking out of a driver or socket).
      expect(received.every((m) => Object.getPrototypeOf(m.data) === Uint8Array.prototype)).toBe(true);
      await sub.stop();

      // Acked: the durable resumes after them, on another instance as well.
      const later: BusMessage[] = [];
      const other = await open();
      await other.consume(options, collect(later));
      await bus.publish(`${prefix}.item`, bytes("m4"), { id: "id-4" });
      await eventually(() => later.length >= 1, {
        ...WAIT,
        message: "the message published after the restart",
      });
      expect(later.map((m) => text(m.data))).toEqual(["m4"]);
    });

    it("redelivers to another instance a message whose consumer died without acking", async () => {
      const first = await open({ drainTimeoutMs: 50 });
      const { stream, prefix } = await freshStream(first);
      const options = consumerOptions(stream, { ackWaitMs: SHORT_ACK_WAIT_MS });
      const stuck = gate();
      const seenByFirst: BusMessage[] = [];
      await first.consume(options, async (msg) => {
        seenByFirst.push(msg);
        await stuck.promise; // the process "dies" mid-handler
      });
      await first.publish(`${prefix}.job`, bytes("work"), { id: "job-1" });
      await eventually(() => seenByFirst.length === 1, { ...WAIT, message: "the first delivery" });
      await first.close();

      const second = await open();
      const seenBySecond: BusMessage[] = [];
      await second.consume(options, collect(seenBySecond));
      await eventually(() => seenBySecond.length >= 1, {
        ...WAIT,
        message: "the redelivery to the second instance",
      });
      expect(seenBySecond[0]!.id).toBe("job-1");
      expect(text(seenBySecond[0]!.data)).toBe("work");
      expect(seenBySecond[0]!.deliveryCount).toBe(2);

      // The dead instance's handler finishing late must not ack or break anything.
      stuck.open();
      await sleep(SHORT_ACK_WAIT_MS * 3);
      expect(seenBySecond).toHaveLength(1);
      expect(seenByFirst).toHaveLength(1);
    });

    it("redelivers a message whose handler threw, with deliveryCount 2", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const deliveries: BusMessage[] = [];
      await bus.consume(consumerOptions(stream, { retryDelaysMs: [50] }), async (msg) => {
        deliveries.push(msg);
        if (msg.deliveryCount === 1) throw new Error("transaction failed");
      });
      await bus.publish(`${prefix}.x`, bytes("retry me"), { id: "r-1" });
      await eventually(() => deliveries.length === 2, {
        ...WAIT,
        message: "the redelivery after the failure",
      });
      expect(deliveries.map((m) => [m.id, m.deliveryCount])).toEqual([
        ["r-1", 1],
        ["r-1", 2],
      ]);
      await sleep(300);
      expect(deliveries).toHaveLength(2);
    });

    it("stops delivering a message after maxDeliver attempts", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const deliveries: BusMessage[] = [];
      await bus.consume(consumerOptions(stream, { maxDeliver: 2, retryDelaysMs: [20] }), async (msg) => {
        deliveries.push(msg);
        if (msg.id === "poison") throw new Error("cannot handle");
      });
      await bus.publish(`${prefix}.x`, bytes("bad"), { id: "poison" });
      await eventually(() => deliveries.length === 2, { ...WAIT, message: "two attempts" });
      await bus.publish(`${prefix}.x`, bytes("good"), { id: "fine" });
      await eventually(() => deliveries.some((m) => m.id === "fine"), {
        ...WAIT,
        message: "the next message",
      });
      await sleep(300);
      expect(deliveries.map((m) => [m.id, m.deliveryCount])).toEqual([
        ["poison", 1],
        ["poison", 2],
        ["fine", 1],
      ]);
    });

    it("stores a re-published id once, flags the duplicate and delivers it once", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const first = await bus.publish(`${prefix}.fanout`, bytes("original"), { id: "outbox-42" });
      const again = await bus.publish(`${prefix}.fanout`, bytes("retry after crash"), { id: "outbox-42" });
      expect(first.duplicate).toBe(false);
      expect(again.duplicate).toBe(true);
      expect(again.seq).toBe(first.seq);
      await bus.publish(`${prefix}.fanout`, bytes("next"), { id: "outbox-43" });

      const received: BusMessage[] = [];
      await bus.consume(consumerOptions(stream), collect(received));
      await eventually(() => received.some((m) => m.id === "outbox-43"), {
        ...WAIT,
        message: "the message after the duplicate",
      });
      await sleep(200);
      expect(received.map((m) => [m.id, text(m.data)])).toEqual([
        ["outbox-42", "original"],
        ["outbox-43", "next"],
      ]);
    });

    it("keeps publish order per subject, also with subjects interleaved", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const published: string[] = [];
      for (let i = 0; i < 30; i++) {
        const subject = `${prefix}.q.${["a", "b", "c"][i % 3]}`;
        await bus.publish(subject, bytes(`${subject}#${i}`), { id: `o-${i}` });
        published.push(`${subject}#${i}`);
      }
      for (const maxInFlight of [1, 4]) {
        const received: string[] = [];
        const sub = await bus.consume(consumerOptions(stream, { maxInFlight }), async (msg) => {
          received.push(text(msg.data));
          await sleep(1);
        });
        await eventually(() => received.length === 30, {
          ...WAIT,
          message: `30 messages with maxInFlight ${maxInFlight}`,
        });
        await sub.stop();
        for (const letter of ["a", "b", "c"]) {
          const ofSubject = (list: string[]) => list.filter((m) => m.startsWith(`${prefix}.q.${letter}#`));
          expect(ofSubject(received)).toEqual(ofSubject(published));
        }
      }
    });

    it("never has more than maxInFlight messages in the handler while a burst waits", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      for (let i = 0; i < 20; i++) await bus.publish(`${prefix}.burst`, bytes(`${i}`), { id: `b-${i}` });
      let inside = 0;
      let most = 0;
      const done = new Set<string>();
      await bus.consume(consumerOptions(stream, { maxInFlight: 3 }), async (msg) => {
        inside++;
        most = Math.max(most, inside);
        await sleep(15);
        inside--;
        done.add(msg.id);
      });
      await eventually(() => done.size === 20, { ...WAIT, message: "all 20 messages" });
      expect(most).toBeLessThanOrEqual(3);
      expect(most).toBeGreaterThan(1);
    });

    it("stop() waits for the handler in flight, which then acks", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const hold = gate();
      const received: BusMessage[] = [];
      const options = consumerOptions(stream, { ackWaitMs: SHORT_ACK_WAIT_MS });
      const sub: Subscription = await bus.consume(options, async (msg) => {
        received.push(msg);
        await hold.promise;
      });
      await bus.publish(`${prefix}.slow`, bytes("slow"), { id: "s-1" });
      await eventually(() => received.length === 1, { ...WAIT, message: "the delivery" });
      let stopped = false;
      const stopping = sub.stop().then(() => {
        stopped = true;
      });
      await sleep(100);
      expect(stopped).toBe(false);
      hold.open();
      await stopping;

      const again: BusMessage[] = [];
      await bus.consume(options, collect(again));
      await bus.publish(`${prefix}.slow`, bytes("marker"), { id: "s-2" });
      await eventually(() => again.some((m) => m.id === "s-2"), { ...WAIT, message: "the marker" });
      await sleep(SHORT_ACK_WAIT_MS * 2);
      expect(again.map((m) => m.id)).toEqual(["s-2"]);
    });

    it("shares one durable between instances: each message handled once", async () => {
      const a = await open();
      const b = await open();
      const { stream, prefix } = await freshStream(a);
      const options = consumerOptions(stream, { maxInFlight: 2 });
      const byA: string[] = [];
      const byB: string[] = [];
      const handler = (into: string[]) => async (msg: BusMessage) => {
        into.push(msg.id);
        await sleep(5);
      };
      await a.consume(options, handler(byA));
      await b.consume(options, handler(byB));
      for (let i = 0; i < 40; i++) await a.publish(`${prefix}.work`, bytes(`${i}`), { id: `w-${i}` });
      await eventually(() => byA.length + byB.length >= 40, { ...WAIT, message: "40 deliveries" });
      await sleep(200);
      const all = [...byA, ...byB].sort();
      expect(all).toEqual(Array.from({ length: 40 }, (_, i) => `w-${i}`).sort());
      expect(byA.length).toBeGreaterThan(0);
      expect(byB.length).toBeGreaterThan(0);
    });

    it("maxAckPending 1: a later message waits while an abandoned one waits out its ack wait", async () => {
      // A replica stops while its handler still holds m1 (it gives up waiting for it); the
      // other replica must get m1 again before m2 and m3, though they were free all along.
      const holder = await open({ drainTimeoutMs: 50 });
      const other = await open();
      const { stream, prefix } = await freshStream(holder);
      const options = consumerOptions(stream, { maxAckPending: 1, ackWaitMs: SHORT_ACK_WAIT_MS });
      const stuck = gate();
      const held: string[] = [];
      const subscription = await holder.consume(options, async (msg) => {
        held.push(msg.id);
        await stuck.promise;
      });
      for (let i = 1; i <= 3; i++) await holder.publish(`${prefix}.lane`, bytes(`m${i}`), { id: `m${i}` });
      await eventually(() => held.length === 1, { ...WAIT, message: "the holder taking m1" });
      await subscription.stop();
      const received: BusMessage[] = [];
      await other.consume(options, collect(received));
      await eventually(() => received.length >= 3, { ...WAIT, message: "three deliveries" });
      stuck.open();
      expect(held).toEqual(["m1"]);
      expect(received.map((m) => m.id)).toEqual(["m1", "m2", "m3"]);
    });

    it("maxAckPending 1: two subscribers of a durable never hold two messages at once", async () => {
      const a = await open();
      const b = await open();
      const { stream, prefix } = await freshStream(a);
      const options = consumerOptions(stream, { maxAckPending: 1, maxInFlight: 4 });
      let inside = 0;
      let most = 0;
      const order: string[] = [];
      const handler = async (msg: BusMessage): Promise<void> => {
        inside++;
        most = Math.max(most, inside);
        order.push(msg.id);
        await sleep(20);
        inside--;
      };
      await a.consume(options, handler);
      await b.consume(options, handler);
      for (let i = 0; i < 10; i++) await a.publish(`${prefix}.lane`, bytes(`${i}`), { id: `n-${i}` });
      await eventually(() => order.length >= 10, { ...WAIT, message: "ten deliveries" });
      expect(most).toBe(1);
      expect(order).toEqual(Array.from({ length: 10 }, (_, i) => `n-${i}`));
    });

    it("gives every durable all messages", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const one: string[] = [];
      const two: string[] = [];
      await bus.consume(consumerOptions(stream), async (msg) => void one.push(msg.id));
      await bus.consume(consumerOptions(stream), async (msg) => void two.push(msg.id));
      for (let i = 0; i < 10; i++) await bus.publish(`${prefix}.all`, bytes(`${i}`), { id: `a-${i}` });
      await eventually(() => one.length === 10 && two.length === 10, {
        ...WAIT,
        message: "10 messages on each durable",
      });
      const expected = Array.from({ length: 10 }, (_, i) => `a-${i}`);
      expect(one).toEqual(expected);
      expect(two).toEqual(expected);
    });

    it("delivers only subjects matching the filter", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      const received: BusMessage[] = [];
      await bus.consume(consumerOptions(stream, { filterSubject: `${prefix}.keep.*` }), collect(received));
      await bus.publish(`${prefix}.keep.a`, bytes("1"), { id: "f-1" });
      await bus.publish(`${prefix}.drop.a`, bytes("2"), { id: "f-2" });
      await bus.publish(`${prefix}.keep.a.deeper`, bytes("3"), { id: "f-3" });
      await bus.publish(`${prefix}.keep.b`, bytes("4"), { id: "f-4" });
      await eventually(() => received.some((m) => m.id === "f-4"), {
        ...WAIT,
        message: "the last matching message",
      });
      await sleep(100);
      expect(received.map((m) => [m.id, m.subject])).toEqual([
        ["f-1", `${prefix}.keep.a`],
        ["f-4", `${prefix}.keep.b`],
      ]);
    });

    it("drops messages older than the stream's max age, acked or not", async () => {
      const bus = await open();
      const prefix = `ba${randomBytes(6).toString("hex")}`;
      const stream = `S_${prefix}`;
      streamsCreated.push(stream);
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], maxAgeMs: 1000 });
      await bus.publish(`${prefix}.old`, bytes("old"), { id: "old" });
      await sleep(1500);
      await bus.publish(`${prefix}.new`, bytes("new"), { id: "new" });
      const received: BusMessage[] = [];
      await bus.consume(consumerOptions(stream), collect(received));
      await eventually(() => received.some((m) => m.id === "new"), { ...WAIT, message: "the fresh message" });
      await sleep(100);
      expect(received.map((m) => m.id)).toEqual(["new"]);
      // The duplicate window defaults to the max age when that is shorter than 2 minutes.
      await expect(
        bus.ensureStream({
          name: stream,
          subjects: [`${prefix}.>`],
          maxAgeMs: 1000,
          duplicateWindowMs: 5000,
        }),
      ).rejects.toBeInstanceOf(StreamConfigError);
    });

    it("work queue: keeps a message published before any consumer, and deletes it once acked", async () => {
      const bus = await open();
      const prefix = `bw${randomBytes(6).toString("hex")}`;
      const stream = `S_${prefix}`;
      streamsCreated.push(stream);
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      await bus.publish(`${prefix}.job`, bytes("early"), { id: "early" });
      await bus.publish(`${prefix}.job`, bytes("second"), { id: "second" });
      expect(await target.storedMessages(stream)).toBe(2);
      const hold = gate();
      const received: BusMessage[] = [];
      await bus.consume(consumerOptions(stream, { durable: "worker" }), async (msg) => {
        received.push(msg);
        if (msg.id === "second") await hold.promise;
      });
      await eventually(() => received.length === 2, { ...WAIT, message: "both messages" });
      expect(received.map((m) => text(m.data))).toEqual(["early", "second"]);
      // The acked one is gone from the store, the one still in the handler is not.
      await eventually(async () => (await target.storedMessages(stream)) === 1, {
        ...WAIT,
        message: "the acked message to leave the store",
      });
      hold.open();
      await eventually(async () => (await target.storedMessages(stream)) === 0, {
        ...WAIT,
        message: "both messages to leave the store",
      });
      // Each message goes to one durable: a second one overlapping the first is refused.
      await expect(
        bus.consume(
          consumerOptions(stream, { durable: "other", filterSubject: `${prefix}.job` }),
          async () => {},
        ),
      ).rejects.toBeInstanceOf(StreamConfigError);
    });

    it("interest: a declared durable gets what was published before it ran; gone once every durable acked", async () => {
      const bus = await open();
      const prefix = `bi${randomBytes(6).toString("hex")}`;
      const stream = `S_${prefix}`;
      streamsCreated.push(stream);
      await bus.ensureStream({
        name: stream,
        subjects: [`${prefix}.>`],
        retention: "interest",
        durables: [{ name: "all" }, { name: "only-a", filterSubject: `${prefix}.a` }],
      });
      await bus.publish(`${prefix}.a`, bytes("for both"), { id: "a-1" });
      await bus.publish(`${prefix}.b`, bytes("for all only"), { id: "b-1" });
      expect(await target.storedMessages(stream)).toBe(2);
      const all: BusMessage[] = [];
      await bus.consume(consumerOptions(stream, { durable: "all" }), collect(all));
      await eventually(() => all.length === 2, {
        ...WAIT,
        message: "both messages on the unfiltered durable",
      });
      // b-1 was needed by "all" only; a-1 still waits for "only-a".
      await eventually(async () => (await target.storedMessages(stream)) === 1, {
        ...WAIT,
        message: "the message every durable acked to leave",
      });
      const onlyA: BusMessage[] = [];
      await bus.consume(
        consumerOptions(stream, { durable: "only-a", filterSubject: `${prefix}.a` }),
        collect(onlyA),
      );
      await eventually(() => onlyA.length === 1, {
        ...WAIT,
        message: "the early message on the filtered durable",
      });
      expect(onlyA[0]!.id).toBe("a-1");
      await eventually(async () => (await target.storedMessages(stream)) === 0, {
        ...WAIT,
        message: "the last message to leave",
      });
    });

    it("refuses a publish beyond the stream's message or byte limit and stores nothing", async () => {
      const bus = await open();
      const prefix = `bl${randomBytes(6).toString("hex")}`;
      const stream = `S_${prefix}`;
      streamsCreated.push(stream);
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue", maxMsgs: 2 });
      await bus.publish(`${prefix}.x`, bytes("1"), { id: "1" });
      await bus.publish(`${prefix}.x`, bytes("2"), { id: "2" });
      await expect(bus.publish(`${prefix}.x`, bytes("3"), { id: "3" })).rejects.toBeInstanceOf(
        StreamFullError,
      );
      expect(await target.storedMessages(stream)).toBe(2);
      const bytesStream = `B_${prefix}`;
      streamsCreated.push(bytesStream);
      await bus.ensureStream({ name: bytesStream, subjects: [`${prefix}b.>`], maxBytes: 1000 });
      await bus.publish(`${prefix}b.x`, new Uint8Array(600), { id: "big-1" });
      await expect(bus.publish(`${prefix}b.x`, new Uint8Array(600), { id: "big-2" })).rejects.toBeInstanceOf(
        StreamFullError,
      );
      expect(await target.storedMessages(bytesStream)).toBe(1);
    });

    it("applies the bus's default max age to streams that set none", async () => {
      const bus = await open({ streamLimits: { maxAgeMs: 1000 } });
      const prefix = `bd${randomBytes(6).toString("hex")}`;
      const stream = `S_${prefix}`;
      streamsCreated.push(stream);
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      await bus.publish(`${prefix}.old`, bytes("old"), { id: "old" });
      await sleep(1500);
      await bus.publish(`${prefix}.new`, bytes("new"), { id: "new" });
      const received: BusMessage[] = [];
      await bus.consume(consumerOptions(stream), collect(received));
      await eventually(() => received.some((m) => m.id === "new"), { ...WAIT, message: "the fresh message" });
      await sleep(100);
      expect(received.map((m) => m.id)).toEqual(["new"]);
      await eventually(async () => (await target.storedMessages(stream)) === 0, {
        ...WAIT,
        message: "the store to be empty",
      });
    });

    it("notifies listeners on other instances, matching * and > patterns", async () => {
      const listenerBus = await open();
      const notifier = await open();
      const prefix = `bn${randomBytes(6).toString("hex")}`;
      const users: string[] = [];
      const everything: string[] = [];
      const userSub = await listenerBus.listen(`${prefix}.user.*`, (subject, data) =>
        users.push(`${subject}=${text(data)}`),
      );
      let plain = true;
      await listenerBus.listen(`${prefix}.>`, (subject, data) => {
        plain &&= Object.getPrototypeOf(data) === Uint8Array.prototype;
        everything.push(`${subject}=${text(data)}`);
      });
      await notifier.notify(`${prefix}.user.1`, bytes("wake"));
      await notifier.notify(`${prefix}.other.x.y`, bytes("deep"));
      await notifier.notify(`${prefix}.user.1.extra`, bytes("too deep for *"));
      await eventually(() => everything.length === 3, {
        ...WAIT,
        message: "3 notifications on the > listener",
      });
      expect(everything).toEqual([
        `${prefix}.user.1=wake`,
        `${prefix}.other.x.y=deep`,
        `${prefix}.user.1.extra=too deep for *`,
      ]);
      expect(users).toEqual([`${prefix}.user.1=wake`]);
      expect(plain).toBe(true);

      await userSub.stop();
      await notifier.notify(`${prefix}.user.2`, bytes("after stop"));
      await eventually(() => everything.length === 4, { ...WAIT, message: "the notification after stop" });
      await sleep(50);
      expect(users).toEqual([`${prefix}.user.1=wake`]);
    });

    it("refuses unknown streams, subjects no stream captures, bad subjects and overlapping streams", async () => {
      const bus = await open();
      const { stream, prefix } = await freshStream(bus);
      await expect(bus.publish(`nostream${prefix}.x`, bytes("x"), { id: "n-1" })).rejects.toBeInstanceOf(
        StreamNotFoundError,
      );
      await expect(bus.consume(consumerOptions(`missing_${prefix}`), async () => {})).rejects.toBeInstanceOf(
        StreamNotFoundError,
      );
      await expect(bus.publish(`${prefix}.*`, bytes("x"), { id: "n-2" })).rejects.toBeInstanceOf(
        InvalidSubjectError,
      );
      await expect(bus.publish(`${prefix}..x`, bytes("x"), { id: "n-3" })).rejects.toBeInstanceOf(
        InvalidSubjectError,
      );
      // Same definition again: fine.
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], duplicateWindowMs: 60_000 });
      const clashing = `C_${prefix}`;
      streamsCreated.push(clashing);
      await expect(bus.ensureStream({ name: clashing, subjects: [`${prefix}.a.*`] })).rejects.toBeInstanceOf(
        StreamConfigError,
      );
    });

    it("close() stops consumers and listeners and leaves no timers or sockets behind", async () => {
      const leaks = trackResources();
      let alive: string[];
      try {
        const bus = await target.open();
        const { stream, prefix } = await freshStream(bus);
        const received: BusMessage[] = [];
        await bus.consume(consumerOptions(stream, { maxInFlight: 2 }), collect(received));
        await bus.listen(`${prefix}.note`, () => {});
        await bus.publish(`${prefix}.m`, bytes("1"), { id: "c-1" });
        await eventually(() => received.length === 1, { ...WAIT, message: "the message" });
        await bus.close();
        await bus.close(); // idempotent
        await expect(bus.publish(`${prefix}.m`, bytes("2"), { id: "c-2" })).rejects.toBeInstanceOf(
          BusClosedError,
        );
        await sleep(20);
        // Destroy hooks of fired or cleared timers run on a later turn of the event loop.
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      } finally {
        alive = leaks.stop();
      }
      expect(alive).toEqual([]);
    });
  });
}
