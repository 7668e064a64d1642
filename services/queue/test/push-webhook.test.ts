import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { status } from "@grpc/grpc-js";
import { sealPushToken } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { callFailure, makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookAddressPolicy } from "../src/domain/webhook-address.js";
import { type ResolvedAddress, WebhookNotifier, WebhookRefusedError } from "../src/push/notifier.js";
import { Harness } from "./support/harness.js";

// Two HTTPS servers for the host name hook.test on the same port: 127.0.0.1 stands for an address
// the operator allowlisted, 127.0.0.2 (also loopback, refused) for the internal service an
// attacker aims at. Which one gets the POST shows where the notifier connected.
const HOST = "hook.test";
let tls: TestTlsFiles;
let port: number;
const servers: Server[] = [];
const hits: { server: string; path: string; sni: string | undefined }[] = [];

async function listen(address: string, at: number): Promise<number> {
  const server = createServer(
    { cert: readFileSync(tls.certFile(HOST)), key: readFileSync(tls.keyFile(HOST)) },
    (req, res) => {
      const socket = req.socket as { servername?: string | false };
      hits.push({
        server: address,
        path: req.url ?? "",
        sni: typeof socket.servername === "string" ? socket.servername : undefined,
      });
      req.resume();
      res.end("{}");
    },
  );
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at, address, resolve);
  });
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  tls = makeTestTls([HOST]);
  port = await listen("127.0.0.1", 0);
  await listen("127.0.0.2", port);
});
afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  tls?.remove();
});

/** A resolver answering from a script, one answer per call (the last one repeats). */
function scripted(...answers: string[][]) {
  const calls: string[] = [];
  const resolve = async (host: string): Promise<ResolvedAddress[]> => {
    calls.push(host);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)] ?? [];
    return answer.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return { resolve, calls };
}

/** Webhook pushes carry no collapse id; the request is the same for all. */
const PUSH = { collapseId: "q" };

function webhook(url: string): queue.PushToken {
  return { provider: queue.PushProvider.PUSH_PROVIDER_WEBHOOK, token: url };
}

function notifier(allow: string[], resolver: (host: string) => Promise<ResolvedAddress[]>) {
  return new WebhookNotifier({
    policy: new WebhookAddressPolicy(allow),
    resolver,
    ca: readFileSync(tls.caFile),
    timeoutMs: 5000,
  });
}

describe("webhook notifier (SSRF)", () => {
  it("refuses hosts resolving to loopback, private, link-local or metadata addresses, connecting nowhere", async () => {
    for (const address of [
      "127.0.0.2",
      "10.1.2.3",
      "192.168.1.1",
      "169.254.169.254",
      "fd00:ec2::254",
      "::1",
    ]) {
      const { resolve } = scripted([address]);
      const before = hits.length;
      const error = await notifier([], resolve)
        .notify(webhook(`https://${HOST}:${port}/secret-device-token`), PUSH)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error, address).toBeInstanceOf(WebhookRefusedError);
      // The refusal names the host, never the URL's secret path.
      expect((error as Error).message).toContain(HOST);
      expect((error as Error).message).not.toContain("secret-device-token");
      expect(hits.length).toBe(before);
    }
    // A host with one public and one private answer is refused as a whole.
    const mixed = scripted(["93.184.216.34", "127.0.0.2"]);
    await expect(
      notifier([], mixed.resolve).notify(webhook(`https://${HOST}:${port}/x`), PUSH),
    ).rejects.toThrow(WebhookRefusedError);
    // IP literals need no resolver.
    await expect(
      notifier([], mixed.resolve).notify(webhook(`https://[::ffff:127.0.0.2]:${port}/x`), PUSH),
    ).rejects.toThrow(WebhookRefusedError);
  });

  it("reaches an allowlisted address or host over TLS verified for the URL's host name", async () => {
    const byCidr = scripted(["127.0.0.1"]);
    await notifier(["127.0.0.0/31"], byCidr.resolve).notify(webhook(`https://${HOST}:${port}/cidr`), PUSH);
    expect(hits.filter((h) => h.path === "/cidr")).toEqual([
      { server: "127.0.0.1", path: "/cidr", sni: HOST },
    ]);

    const byName = scripted(["127.0.0.1"]);
    await notifier([HOST], byName.resolve).notify(webhook(`https://${HOST}:${port}/name`), PUSH);
    expect(hits.filter((h) => h.path === "/name")).toEqual([
      { server: "127.0.0.1", path: "/name", sni: HOST },
    ]);
  });

  it("connects to the address it checked: a resolver that changes its answer (DNS rebinding) cannot reach a refused one", async () => {
    // First answer: the allowlisted address; every later answer: the refused internal one.
    const rebinding = scripted(["127.0.0.1"], ["127.0.0.2"]);
    const n = notifier(["127.0.0.1/32"], rebinding.resolve);
    await n.notify(webhook(`https://${HOST}:${port}/rebind-1`), PUSH);
    expect(hits.filter((h) => h.path === "/rebind-1").map((h) => h.server)).toEqual(["127.0.0.1"]);
    // Resolved exactly once for that notification: the connection used the checked answer.
    expect(rebinding.calls).toEqual([HOST]);
    // The next notification sees the new answer and is refused before connecting.
    await expect(n.notify(webhook(`https://${HOST}:${port}/rebind-2`), PUSH)).rejects.toThrow(
      WebhookRefusedError,
    );
    expect(hits.some((h) => h.server === "127.0.0.2")).toBe(false);
  });
});

describe("setting a webhook push token", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start({ config: { QS_PUSH_WEBHOOK_ALLOW: ["10.9.0.0/16"] } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function setToken(url: string) {
    const alice = await h.newUser();
    return h.client.setPushToken({
      signed: await alice.signed(queue.SetPushTokenTbs, "setPushToken", {
        sealedPushToken: sealPushToken(alice.qsKey, queue.PushToken.encode(webhook(url)).finish()),
      }),
    });
  }

  it("refuses IP-literal and loopback URLs with INVALID_ARGUMENT naming the field", async () => {
    for (const url of [
      "https://127.0.0.1/hook",
      "https://169.254.169.254/latest/meta-data",
      "https://[::ffff:169.254.169.254]/x",
      "https://[fd00:ec2::254]/x",
      "https://10.0.0.1/x",
      "https://localhost/x",
    ]) {
      const error = await callFailure(setToken(url));
      expect(error.code, url).toBe(status.INVALID_ARGUMENT);
      expect(error.statusMessage, url).toMatch(/tbs\.sealed_push_token\.token: webhook host refused/);
    }
    const atCreate = await callFailure(
      h.newUser({ pushToken: webhook("https://192.168.0.10/hook") }).then(() => undefined),
    );
    expect(atCreate.code).toBe(status.INVALID_ARGUMENT);
  });

  it("accepts public hosts, host names (checked at delivery) and allowlisted ranges", async () => {
    await setToken("https://93.184.216.34/hook");
    await setToken("https://push.example/hook");
    await setToken("https://10.9.1.2/hook");
  });
});
