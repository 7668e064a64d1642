import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { toHex } from "@phoenix/crypto";
import { type common, queue, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookAddressPolicy } from "../src/domain/webhook-address.js";
import { WebhookNotifier } from "../src/push/notifier.js";
import { publishFanOut } from "./support/fan-out.js";
import { Harness, type QsClient } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

let h: Harness;
let webhook: Server;
let webhookUrl: string;
const hits: string[] = [];

beforeAll(async () => {
  webhook = createServer((req, res) => {
    hits.push(req.url ?? "");
    req.resume();
    res.end("{}");
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}`;
  // The test webhook listens on loopback: the operator allowlist lets the QS reach it.
  h = await Harness.start({
    notifier: new WebhookNotifier({ allowHttp: true, policy: new WebhookAddressPolicy(["127.0.0.1"]) }),
    config: { QS_PUSH_WEBHOOK_ALLOW: ["127.0.0.1"] },
  });
});
afterAll(async () => {
  await h?.stop();
  await new Promise((resolve) => webhook?.close(resolve));
});

type Event = queue.ListenResponse["event"];

/** An open Listen stream of `client`, with the events received so far. */
async function openListen(client: TestClient, start: bigint, via: QsClient = h.client) {
  const call = via.listen();
  const events: Event[] = [];
  const iterator = call.responses[Symbol.asyncIterator]();
  const reading = (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      events.push((next.value as queue.ListenResponse).event);
    }
  })();
  reading.catch(() => {});
  const init = await signTbs(
    queue.ListenTbs,
    {
      header: requestHeader(rpcLabel(queue.QueueServiceService.listen), {
        $case: "qsClientId",
        value: client.clientId,
      }),
      sequenceNumberStart: start,
    },
    (label, bytes) => client.clientKey.sign(label, bytes),
  );
  await call.send({ request: { $case: "init", value: init } });
  const messages = () =>
    events
      .filter((e): e is { $case: "message"; value: common.QueueMessage } => e?.$case === "message")
      .map((e) => e.value);
  return {
    events,
    messages,
    reading,
    ack: (upTo: bigint) => call.send({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
    close: async () => {
      call.end();
      await reading.catch(() => {});
    },
    cancel: async () => {
      call.cancel();
      await reading.catch(() => {});
    },
  };
}

describe("Listen", () => {
  it("sends queued messages, the drained marker, then live messages; a reconnect gets what was not acked", async () => {
    const alice = await h.newUser();
    const ref = alice.qsReference();
    const early = await publishFanOut(h, { recipients: [ref] });
    await eventually(async () => ((await alice.dequeue(0n)).messages.length === 2 ? true : undefined));

    const stream = await openListen(alice, 0n);
    await eventually(async () => (stream.events.some((e) => e?.$case === "empty") ? true : undefined));
    expect(stream.events.map((e) => e?.$case)).toEqual(["message", "message", "empty"]);
    expect(alice.decrypt(stream.messages()).map(toHex)).toEqual([toHex(early.payload)]);

    const live = await publishFanOut(h, { recipients: [ref] });
    await eventually(async () => (stream.messages().length === 3 ? true : undefined));
    expect(alice.decrypt(stream.messages().slice(2)).map(toHex)).toEqual([toHex(live.payload)]);

    await stream.ack(2n); // Init and the first payload processed; the live one not acked
    await eventually(async () =>
      (await alice.dequeue(0n)).messages[0]?.sequenceNumber === 2n ? true : undefined,
    );
    await stream.cancel();

    const again = await openListen(alice, 0n);
    await eventually(async () => (again.events.some((e) => e?.$case === "empty") ? true : undefined));
    expect(again.messages().map((m) => m.sequenceNumber)).toEqual([2n]);
    await again.close();
  });

  it("refuses a stream whose first message is not init, and an ack beyond the queue", async () => {
    const alice = await h.newUser();
    const call = h.client.listen();
    await call.send({ request: { $case: "ack", value: { upToSequenceNumber: 1n } } });
    await expect(drain(call.responses)).rejects.toMatchObject({ code: 3 });

    const stream = await openListen(alice, 0n);
    await eventually(async () => (stream.events.some((e) => e?.$case === "empty") ? true : undefined));
    await stream.ack(99n);
    await expect(stream.reading).rejects.toMatchObject({ code: 3 });
    expect((await alice.dequeue(0n)).messages).toHaveLength(1);
  });

  it("wakes a listener on one replica for a message enqueued by another", async () => {
    const alice = await h.newUser();
    const replica = await h.startInstance({ hooks: { consumeFanOuts: false } });
    const channel = createChannel(`127.0.0.1:${replica.port}`);
    const onReplica = createServiceClient(queue.QueueServiceService, channel);
    try {
      const stream = await openListen(alice, 0n, onReplica);
      await eventually(async () => (stream.events.some((e) => e?.$case === "empty") ? true : undefined));
      const fanOut = await publishFanOut(h, { recipients: [alice.qsReference()] });
      await eventually(async () => (stream.messages().length === 2 ? true : undefined));
      expect(alice.decrypt(stream.messages()).map(toHex)).toEqual([toHex(fanOut.payload)]);
      await stream.close();
    } finally {
      channel.close();
      await replica.stop();
    }
  });

  it("sends a push notification only when no listener holds the queue", async () => {
    const bob = await h.newUser({
      pushToken: { provider: queue.PushProvider.PUSH_PROVIDER_WEBHOOK, token: `${webhookUrl}/bob` },
    });
    const ref = bob.qsReference();
    const stream = await openListen(bob, 0n);
    await eventually(async () => (stream.events.some((e) => e?.$case === "empty") ? true : undefined));
    await publishFanOut(h, { recipients: [ref] });
    await eventually(async () => (stream.messages().length === 2 ? true : undefined));
    await stream.close();

    await publishFanOut(h, { recipients: [ref], suppressNotifications: true });
    await publishFanOut(h, { recipients: [ref] });
    await eventually(async () => ((await bob.dequeue(0n)).messages.length === 4 ? true : undefined));
    await eventually(async () => (hits.includes("/bob") ? true : undefined));
    expect(hits.filter((u) => u === "/bob")).toEqual(["/bob"]);
  });
});

async function drain(responses: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of responses) {
    // discard
  }
}
