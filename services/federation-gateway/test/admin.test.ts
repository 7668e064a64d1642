// FederationAdminService on the gateway's admin listener: operator refusals and the audit log,
// ListPeers after real traffic both ways, and the federation policy changed at runtime — in force
// at once on the replica that took the call and within FEDERATION_POLICY_REFRESH on another.
import { status } from "@grpc/grpc-js";
import { SigningKey, toHex } from "@phoenix/crypto";
import {
  createChannel,
  createClient,
  type FederationAdminServiceClient,
  FederationAdminServiceDefinition,
  federation,
  federationAdmin,
  type MessageEncoder,
  requestHeader,
  rpcLabel,
  signTbs,
} from "@phoenix/proto";
import { eventually, fanOutEnvelope } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { type GatewayInstance, Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";
const S = federationAdmin.FederationAdminServiceService;
const Mode = federationAdmin.FederationPolicyMode;
const OPS = SigningKey.generate();
const ADMIN_ENV = {
  ADMIN_GRPC_PORT: "0",
  ADMIN_OPERATOR_KEYS: `ops:${Buffer.from(OPS.publicKey).toString("base64url")}`,
  FEDERATION_POLICY_REFRESH: "200ms",
};

/** Signs an operator request for `method` (operator `ops` unless told). */
async function signed<T extends { header: federationAdmin.ListPeersTbs["header"]; operator: string }>(
  type: MessageEncoder<T>,
  method: { path: string },
  fields: Omit<T, "header" | "operator">,
  options: { operator?: string; key?: SigningKey } = {},
) {
  const tbs = {
    ...fields,
    header: requestHeader(rpcLabel(method), undefined),
    operator: options.operator ?? "ops",
  };
  const key = options.key ?? OPS;
  return { signed: await signTbs(type, tbs as T, (label, bytes) => key.sign(label, bytes)) };
}

describe("the federation gateway's admin API", () => {
  let net: Network;
  let replica: GatewayInstance | undefined;
  const channels: ReturnType<typeof createChannel>[] = [];

  const adminOf = (instance: GatewayInstance | undefined): FederationAdminServiceClient => {
    const channel = createChannel(`127.0.0.1:${instance?.adminPort}`);
    channels.push(channel);
    return createClient(FederationAdminServiceDefinition, channel);
  };
  const peers = async (client: FederationAdminServiceClient) =>
    (await client.listPeers(await signed(federationAdmin.ListPeersTbs, S.listPeers, {}))).peers;
  const setPolicy = async (client: FederationAdminServiceClient, policy: federationAdmin.FederationPolicy) =>
    client.setFederationPolicy(
      await signed(federationAdmin.SetFederationPolicyTbs, S.setFederationPolicy, { policy }),
    );
  /** A DeliverFanOut signed by B's gateway key, as B's gateway would send it to A. */
  const fromB = async () => {
    const key = net.node(B).running?.gateway.context.keys.active()?.signingKey;
    if (!key) throw new Error("B has no key");
    return signFederationRequest(
      federation.DeliverFanOutTbs,
      rpcLabel(federation.FederationServiceService.deliverFanOut),
      B,
      key,
      { envelope: fanOutEnvelope(B, A, new Uint8Array([7])) },
    );
  };
  /** The status code of a DeliverFanOut from B to A's gateway at `port` (0: accepted). */
  const deliverTo = async (port: number | undefined): Promise<number> => {
    const channel = createChannel(`127.0.0.1:${port}`);
    channels.push(channel);
    const client = createClient(federation.FederationServiceDefinition, channel);
    return client.deliverFanOut({ signed: await fromB() }).then(
      () => 0,
      (error: { code: number }) => error.code,
    );
  };

  beforeAll(async () => {
    net = await Network.start([A, B], { env: { [A]: ADMIN_ENV } });
  });
  afterAll(async () => {
    for (const channel of channels) channel.close();
    await replica?.stop();
    await net?.stop();
  });

  it("refuses calls without a known operator's signature, and audits every call", async () => {
    const a = net.node(A);
    expect(a.running?.adminPort).toBeGreaterThan(0);
    expect(a.running?.adminPort).not.toBe(a.port);
    const client = adminOf(a.running);
    await expect(client.listPeers({})).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(
      client.listPeers(await signed(federationAdmin.ListPeersTbs, S.listPeers, {}, { operator: "mallory" })),
    ).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: expect.stringMatching(/unknown operator "mallory"/),
    });
    await expect(
      client.getFederationPolicy(
        await signed(
          federationAdmin.GetFederationPolicyTbs,
          S.getFederationPolicy,
          {},
          { key: SigningKey.generate() },
        ),
      ),
    ).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: 'signature of operator "ops" does not verify',
    });
    // The public listener does not serve the admin API.
    const publicChannel = createChannel(`127.0.0.1:${a.port}`);
    channels.push(publicChannel);
    const onPublic = createClient(FederationAdminServiceDefinition, publicChannel);
    await expect(onPublic.listPeers({})).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
    // A request replayed is refused too.
    const request = await signed(federationAdmin.GetFederationPolicyTbs, S.getFederationPolicy, {});
    expect(await client.getFederationPolicy(request)).toMatchObject({ fromConfig: true });
    await expect(client.getFederationPolicy(request)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    const result = await a.db.db.execute(
      sql`SELECT operator, authenticated, method, outcome FROM admin_audit ORDER BY id`,
    );
    const rows = (result as unknown as { rows: unknown[] }).rows;
    expect(rows).toEqual([
      // An empty request: nothing claimed.
      { operator: "", authenticated: false, method: "ListPeers", outcome: "INVALID_ARGUMENT" },
      { operator: "mallory", authenticated: false, method: "ListPeers", outcome: "UNAUTHENTICATED" },
      { operator: "ops", authenticated: false, method: "GetFederationPolicy", outcome: "UNAUTHENTICATED" },
      { operator: "ops", authenticated: true, method: "GetFederationPolicy", outcome: "ok" },
      // The replay: its signature verified, its request id was taken.
      { operator: "ops", authenticated: true, method: "GetFederationPolicy", outcome: "UNAUTHENTICATED" },
    ]);
  });

  it("lists peers with last contact, backlog and failures after real traffic", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const client = adminOf(a.running);
    const first = fanOutEnvelope(A, B, new Uint8Array([1]));
    await a.publishOutbound(first, toHex(first.envelopeId));
    await eventually(() => b.fanOuts.length >= 1, { timeoutMs: 20_000, message: "delivery to B" });
    expect(await deliverTo(a.port)).toBe(0);
    const [peer] = await peers(client);
    expect(peer).toMatchObject({ domain: B, admitted: true, outboundBacklog: 0n, outboundFailures: 0n });
    // Coarse: whole minutes.
    expect((peer?.lastOutboundAt?.getTime() ?? 1) % 60_000).toBe(0);
    expect((peer?.lastInboundAt?.getTime() ?? 1) % 60_000).toBe(0);
    expect(peer?.lastInboundAt).toBeInstanceOf(Date);

    // B down: A's envelope waits in B's lane and every attempt fails.
    await b.stopGateway();
    const second = fanOutEnvelope(A, B, new Uint8Array([2]));
    await a.publishOutbound(second, toHex(second.envelopeId));
    const waiting = await eventually(
      async () => {
        const [p] = await peers(client);
        return p !== undefined && p.outboundFailures > 0n && p.outboundBacklog >= 1n ? p : undefined;
      },
      { timeoutMs: 20_000, message: "failures and backlog counted" },
    );
    expect(waiting.outboundBacklog).toBe(1n);
    await b.start();
    await eventually(() => b.fanOuts.length >= 2, { timeoutMs: 20_000, message: "the backlog delivered" });
    await eventually(async () => (await peers(client))[0]?.outboundBacklog === 0n, { timeoutMs: 20_000 });
  });

  it("changes the policy at runtime: inbound refused after deny and admitted after allow, on a second replica too", async () => {
    const a = net.node(A);
    replica = await a.startReplica(ADMIN_ENV);
    const client = adminOf(a.running);
    expect(
      await client.getFederationPolicy(
        await signed(federationAdmin.GetFederationPolicyTbs, S.getFederationPolicy, {}),
      ),
    ).toEqual({
      policy: { mode: Mode.FEDERATION_POLICY_MODE_ALLOWLIST, allowedDomains: [B], deniedDomains: [] },
      fromConfig: true,
    });
    expect(await deliverTo(a.port)).toBe(0);
    expect(await deliverTo(replica.port)).toBe(0);
    const before = (await peers(client))[0]?.inboundPolicyRefusals ?? 0n;

    const denied = await setPolicy(client, {
      mode: Mode.FEDERATION_POLICY_MODE_OPEN,
      allowedDomains: [],
      deniedDomains: [B, "c.example.org", B],
    });
    expect(denied.policy).toEqual({
      mode: Mode.FEDERATION_POLICY_MODE_OPEN,
      allowedDomains: [],
      deniedDomains: [B, "c.example.org"],
    });
    // At once on the replica that took the call; within the refresh on the other.
    expect(await deliverTo(a.port)).toBe(status.PERMISSION_DENIED);
    await eventually(async () => (await deliverTo(replica?.port)) === status.PERMISSION_DENIED, {
      timeoutMs: 10_000,
      message: "the second replica refusing B",
    });
    // Outbound too: a proxied call to B is refused before it leaves.
    const proxy = net.proxyClient(A);
    await expect(
      proxy.proxy({
        destinationDomain: B,
        method: "/phoenix.queue.v1.QueueService/FetchAddPackages",
        request: new Uint8Array(),
      }),
    ).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    const [refused] = await peers(client);
    expect(refused).toMatchObject({ domain: B, admitted: false });
    expect(refused?.inboundPolicyRefusals).toBeGreaterThan(before);
    expect(
      await client.getFederationPolicy(
        await signed(federationAdmin.GetFederationPolicyTbs, S.getFederationPolicy, {}),
      ),
    ).toMatchObject({ fromConfig: false, policy: { deniedDomains: [B, "c.example.org"] } });

    await setPolicy(adminOf(replica), {
      mode: Mode.FEDERATION_POLICY_MODE_ALLOWLIST,
      allowedDomains: [B],
      deniedDomains: [],
    });
    expect(await deliverTo(replica.port)).toBe(0);
    await eventually(async () => (await deliverTo(a.port)) === 0, {
      timeoutMs: 10_000,
      message: "A admitting B again",
    });
    expect((await peers(client))[0]).toMatchObject({ domain: B, admitted: true });
  });

  it("refuses a malformed policy with INVALID_ARGUMENT and keeps the one in force", async () => {
    const client = adminOf(net.node(A).running);
    const cases: [federationAdmin.FederationPolicy, RegExp][] = [
      [
        { mode: Mode.FEDERATION_POLICY_MODE_UNSPECIFIED, allowedDomains: [], deniedDomains: [] },
        /mode: must be allowlist or open/,
      ],
      [
        { mode: Mode.FEDERATION_POLICY_MODE_OPEN, allowedDomains: [], deniedDomains: ["Evil.Test"] },
        /"Evil.Test" is not a fully qualified domain name/,
      ],
      [
        { mode: Mode.FEDERATION_POLICY_MODE_OPEN, allowedDomains: ["nodots"], deniedDomains: [] },
        /"nodots" is not a fully qualified/,
      ],
      [{ mode: Mode.FEDERATION_POLICY_MODE_OPEN, allowedDomains: [], deniedDomains: [A] }, /own domain/],
    ];
    for (const [policy, message] of cases) {
      await expect(setPolicy(client, policy)).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: expect.stringMatching(message),
      });
    }
    const now = await client.getFederationPolicy(
      await signed(federationAdmin.GetFederationPolicyTbs, S.getFederationPolicy, {}),
    );
    expect(now.policy).toEqual({
      mode: Mode.FEDERATION_POLICY_MODE_ALLOWLIST,
      allowedDomains: [B],
      deniedDomains: [],
    });
  });
});
