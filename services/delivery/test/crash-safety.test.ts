// Fault injection: the DS process is SIGKILLed after requests committed but before its outbox
// relay published their fan-outs; the restarted process delivers them, exactly once.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { encryptMessage, processIncoming } from "@phoenix/mls";
import { outbox } from "@phoenix/runtime/outbox";
import { eventually, ServiceProcess } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, natsUrl, TestGroup } from "./support/harness.js";

describe("DS crash safety (child process, SIGKILL after commit)", () => {
  let h: Harness;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    h = await Harness.start({ inProcess: false });
  });
  afterAll(async () => {
    for (const p of processes) await p.kill();
    await h?.stop();
  });

  function spawnDs(extra: Record<string, string>): ServiceProcess {
    const url = h.db.url;
    if (url === undefined) throw new Error("the test database has no URL");
    const p = ServiceProcess.spawn({
      name: "delivery",
      entry: "services/delivery/src/main.ts",
      env: { ...h.env({ env: extra }), LOG_LEVEL: "info", DATABASE_URL: url, NATS_URL: natsUrl() },
    });
    processes.push(p);
    return p;
  }

  async function streamMessages(): Promise<number> {
    const nc = await connect({ servers: natsUrl() });
    try {
      const jsm = await jetstreamManager(nc);
      // Messages ever stored: the fan-out stream is a work queue, handled ones leave it.
      return (await jsm.streams.info(h.fanOutStream)).state.last_seq;
    } finally {
      await nc.close();
    }
  }

  it("delivers fan-outs committed before a SIGKILL after the restart, and a re-publish only once", async () => {
    // 1. A DS whose relay does not run: acknowledged requests leave their fan-outs in the outbox.
    const first = spawnDs({ DS_RELAY_START_DELAY: "1h" });
    await h.attach(await first.listeningPort("grpc server listening", 60_000));
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const group = await TestGroup.create(h, alice);
    await group.add(alice, [bob]);
    const sent = await encryptMessage(alice.mls(), h.cs, new TextEncoder().encode("survives a crash"));
    alice.state = sent.newState;
    await group.send(alice, sent.message);

    const pending = await h.db.db.select().from(outbox);
    expect(pending).toHaveLength(2); // bob's Welcome bundle and alice's message to bob
    expect(await streamMessages()).toBe(0);

    first.signal("SIGKILL");
    expect((await first.exited).signal).toBe("SIGKILL");

    // 2. The restarted DS publishes what the dead one committed.
    const second = spawnDs({});
    await h.attach(await second.listeningPort("grpc server listening", 60_000));
    await h.waitForFanOuts(2);
    const welcome = await h.waitForPayload(bob, "welcomeBundle");
    expect(welcome.content?.$case).toBe("welcomeBundle");
    const delivered = await h.waitForPayload(bob, "mlsMessage");
    if (delivered.content?.$case !== "mlsMessage") throw new Error("expected an MLS message");
    const read = await processIncoming(bob.mls(), h.cs, delivered.content.value);
    if (read.kind !== "application") throw new Error("expected an application message");
    expect(new TextDecoder().decode(read.plaintext)).toBe("survives a crash");
    expect(h.inbox(alice)).toHaveLength(0); // the sender never receives its own message
    await eventually(async () => (await h.db.db.select().from(outbox)).length === 0, {
      timeoutMs: 20_000,
      message: "an empty outbox",
    });

    // 3. A relay that died after publishing but before deleting leaves its rows behind: put them
    // back and let the running relay publish them again. JetStream drops them (same outbox id).
    await h.db.db.insert(outbox).values(pending.map(({ seq: _seq, ...row }) => row));
    await eventually(async () => (await h.db.db.select().from(outbox)).length === 0, {
      timeoutMs: 20_000,
      message: "the re-published rows to be deleted",
    });
    expect(await streamMessages()).toBe(2);
    expect(h.fanOuts).toHaveLength(2);
    expect(h.inbox(bob)).toHaveLength(2);

    // 4. SIGTERM is a clean shutdown through the runtime lifecycle.
    second.signal("SIGTERM");
    expect((await second.exited).code).toBe(0);
    expect(second.lines.map((l) => l.msg)).toContain("shutdown complete");
  }, 120_000);
});
