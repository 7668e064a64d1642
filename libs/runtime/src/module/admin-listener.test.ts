import { Writable } from "node:stream";
import { SigningKey } from "@phoenix/crypto";
import {
  admin,
  type common,
  createChannel,
  createClient,
  FederationProxyServiceDefinition,
  FederationServiceDefinition,
  federation,
  requestHeader,
  rpcLabel,
  signTbs,
} from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { envString, serviceConfig } from "../config/index.js";
import { UnauthenticatedError } from "../errors/rpc-errors.js";
import { defineService, unary } from "../grpc/handlers.js";
import type { ReplayClaimer, SignedRequestPolicy } from "../signed-request/authenticator.js";
import {
  adminListenerConfig,
  authenticateOperator,
  OperatorKeyConfigError,
  parseOperatorKeys,
} from "./admin-listener.js";
import { runModule, startModules } from "./run-module.js";
import { defineServiceModule } from "./service-module.js";

const entry = (name: string, key: SigningKey) =>
  `${name}:${Buffer.from(key.publicKey).toString("base64url")}`;

describe("parseOperatorKeys", () => {
  it("reads name:base64url-public-key entries and refuses bad ones naming the entry", () => {
    const ops = SigningKey.generate();
    const keys = parseOperatorKeys([entry("ops", ops)]);
    expect([...keys.keys()]).toEqual(["ops"]);
    expect(keys.get("ops")?.bytes).toEqual(ops.publicKey);
    expect(() => parseOperatorKeys(["no-colon"])).toThrow(OperatorKeyConfigError);
    expect(() => parseOperatorKeys([`ops:${"A".repeat(10)}`])).toThrow(
      /entry "ops": not a base64url Ed25519/,
    );
    expect(() => parseOperatorKeys([entry("ops", ops), entry("ops", ops)])).toThrow(
      /names operator "ops" twice/,
    );
  });
});

/** An in-memory replay claimer (the services claim in their database). */
function memoryReplay(): ReplayClaimer<unknown> {
  const seen = new Set<string>();
  return {
    async claim(_tx, parts) {
      const key = parts.map((p) => Buffer.from(p).toString("hex")).join("/");
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    },
  };
}

const METHOD = admin.AuthAdminServiceService.getDomainStats;

async function signed(key: SigningKey, operator: string, sender?: common.RequestHeader["sender"]) {
  const header = requestHeader(rpcLabel(METHOD), sender);
  return signTbs(admin.GetDomainStatsTbs, { header, operator }, (label, bytes) => key.sign(label, bytes));
}

describe("authenticateOperator", () => {
  const ops = SigningKey.generate();
  const keys = parseOperatorKeys([entry("ops", ops)]);
  const policy = (): SignedRequestPolicy<unknown> => ({
    window: { maxAgeMs: 60_000, maxFutureSkewMs: 10_000 },
    now: Date.now,
    replay: memoryReplay(),
  });
  const open = (p: SignedRequestPolicy<unknown>, s: common.Signed) =>
    authenticateOperator(p, keys, { signed: s, type: admin.GetDomainStatsTbs, method: METHOD });

  it("accepts a configured operator's signature once: the request id is claimed under its name", async () => {
    const p = policy();
    const request = await signed(ops, "ops");
    const opened = await open(p, request);
    expect(opened.signer.operator).toBe("ops");
    await opened.claim(undefined);
    const again = await open(p, request);
    await expect(again.claim(undefined)).rejects.toThrow(/request id already used/);
  });

  it("refuses an unknown operator, another key under a known name, and a header with a sender", async () => {
    const unknown = open(policy(), await signed(ops, "mallory"));
    await expect(unknown).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(unknown).rejects.toThrow('unknown operator "mallory" (not in ADMIN_OPERATOR_KEYS)');
    await expect(open(policy(), await signed(SigningKey.generate(), "ops"))).rejects.toThrow(
      'signature of operator "ops" does not verify',
    );
    await expect(
      open(policy(), await signed(ops, "ops", { $case: "domain", value: "elsewhere.test" })),
    ).rejects.toThrow(/header sender must be unset in an operator request, got domain/);
  });
});

describe("the admin listener of a module", () => {
  const config = serviceConfig({ serviceName: "admin-toy" }).extend({
    ...adminListenerConfig.shape,
    TOY: envString({ default: "x" }),
  });
  // Any small service stands in for an admin service here.
  const adminService = defineService(federation.FederationProxyServiceService, {
    proxy: unary(async () => ({ response: new Uint8Array([7]) })),
  });
  const toy = defineServiceModule({
    name: "toy",
    config,
    grpc: true,
    async create() {
      return { services: [], admin: { services: [adminService] } };
    },
  });
  const quiet = { GRPC_PORT: "0", METRICS_PORT: "0", SHUTDOWN_GRACE_MS: "1s" };
  const options = (env: Record<string, string>) => ({
    env: { ...quiet, ...env },
    signals: false as const,
    exit: false as const,
    logDestination: new Writable({ write: (_c, _e, done) => done() }),
  });

  it("serves admin services on their own port only, published as <name>Admin", async () => {
    const running = await runModule(toy, options({ ADMIN_GRPC_PORT: "0" }));
    try {
      expect(running.adminPort).toBeGreaterThan(0);
      expect(running.adminPort).not.toBe(running.grpcPort);
      expect(running.addresses.toyAdmin).toBe(`127.0.0.1:${running.adminPort}`);
      const request = federation.ProxyRequest.fromPartial({ method: "x" });
      const adminChannel = createChannel(`127.0.0.1:${running.adminPort}`);
      const publicChannel = createChannel(`127.0.0.1:${running.grpcPort}`);
      try {
        const onAdmin = createClient(FederationProxyServiceDefinition, adminChannel);
        expect([...(await onAdmin.proxy(request)).response]).toEqual([7]);
        const onPublic = createClient(FederationProxyServiceDefinition, publicChannel);
        await expect(onPublic.proxy(request)).rejects.toMatchObject({ code: 12 }); // UNIMPLEMENTED
      } finally {
        adminChannel.close();
        publicChannel.close();
      }
    } finally {
      expect(await running.process.shutdown()).toBe(0);
    }
  });

  it("opens no admin listener while ADMIN_GRPC_PORT is unset", async () => {
    const running = await runModule(toy, options({}));
    expect(running.adminPort).toBeUndefined();
    expect(Object.keys(running.addresses)).toEqual(["toy"]);
    expect(await running.process.shutdown()).toBe(0);
  });

  it("refuses to start a module returning admin services without the admin variables in its schema", async () => {
    const unwired = defineServiceModule({
      name: "unwired",
      config: serviceConfig({ serviceName: "unwired" }),
      grpc: true,
      async create() {
        return { services: [], admin: { services: [adminService] } };
      },
    });
    await expect(runModule(unwired, options({}))).rejects.toThrow();
  });

  it("serves every embedded module's admin services on one shared listener, stopped before the modules", async () => {
    // A second module with an admin service of another kind.
    const otherAdmin = defineService(federation.FederationServiceService, {
      getDomainKeys: unary(async () => federation.GetDomainKeysResponse.fromPartial({})),
      forward: unary(async () => ({ response: new Uint8Array([8]) })),
      deliverFanOut: unary(async () => ({})),
      reportQueueDeleted: unary(async () => ({})),
    });
    const other = defineServiceModule({
      name: "other",
      config,
      grpc: true,
      async create() {
        return { services: [], admin: { services: [otherAdmin] } };
      },
    });
    const running = await startModules([toy, other], {
      env: quiet,
      settings: { domain: "shared.test", dataDir: "", logLevel: "silent", shutdownGraceMs: 1000 },
      logDestination: new Writable({ write: (_c, _e, done) => done() }),
      sharedAdminListener: true,
    });
    try {
      expect(running.adminPort).toBeGreaterThan(0);
      // No listener of their own: the shared one is published as `admin` and `<first>Admin`.
      expect(running.modules.toy?.adminPort).toBeUndefined();
      expect(running.modules.other?.adminPort).toBeUndefined();
      expect(running.addresses.admin).toBe(`127.0.0.1:${running.adminPort}`);
      expect(running.addresses.toyAdmin).toBe(running.addresses.admin);
      expect(running.addresses.otherAdmin).toBeUndefined();
      const channel = createChannel(running.addresses.admin as string);
      try {
        const proxy = createClient(FederationProxyServiceDefinition, channel);
        expect([
          ...(await proxy.proxy(federation.ProxyRequest.fromPartial({ method: "x" }))).response,
        ]).toEqual([7]);
        const forward = createClient(FederationServiceDefinition, channel);
        expect([...(await forward.forward({})).response]).toEqual([8]);
      } finally {
        channel.close();
      }
    } finally {
      await running.stop();
    }
  });
});
