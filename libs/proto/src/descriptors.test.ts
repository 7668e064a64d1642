import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { fileDescriptorSet, protoFiles, protoRoot, rpcCatalog } from "./descriptors.js";
import { AuthKind } from "./gen/phoenix/common/v1/common.js";
import { readProtoTree } from "./proto-text.js";

describe("the embedded descriptor set and RPC catalog", () => {
  const catalog = rpcCatalog();

  it("describes exactly the RPCs written in proto/phoenix (so the embedded set is fresh)", () => {
    const { rpcs } = readProtoTree(protoRoot, join(protoRoot, "phoenix"));
    const fromText = rpcs.map((r) => `/${r.pkg}.${r.service}/${r.name}`).sort();
    expect(catalog.map((r) => r.path).sort()).toEqual(fromText);
  });

  it("carries the REST mapping of client-facing RPCs", () => {
    const register = catalog.find((r) => r.path === "/phoenix.auth.v1.AuthService/RegisterUser");
    expect(register?.http?.pattern).toEqual({ $case: "post", value: "/v1/as/users" });
    expect(register?.http?.body).toBe("*");
    const credentials = catalog.find((r) => r.method === "GetAsCredentials");
    expect(credentials?.http?.pattern).toEqual({ $case: "get", value: "/v1/as/credentials" });
    const listen = catalog.find((r) => r.path === "/phoenix.queue.v1.QueueService/Listen");
    expect(listen).toMatchObject({ clientStreaming: true, serverStreaming: true, http: undefined });
  });

  it("carries each RPC's policy; only AS/DS/QS RPCs are federated", () => {
    expect(catalog.filter((r) => r.policy === undefined).map((r) => r.path)).toEqual([]);
    const federated = catalog.filter((r) => r.policy?.federated).map((r) => r.service);
    expect(new Set(federated)).toEqual(
      new Set([
        "phoenix.auth.v1.AuthService",
        "phoenix.delivery.v1.DeliveryService",
        "phoenix.queue.v1.QueueService",
      ]),
    );
    expect(catalog.find((r) => r.method === "SendMessage")?.policy).toEqual({
      auth: AuthKind.AUTH_KIND_DS_LEAF,
      federated: true,
    });
    expect(catalog.find((r) => r.method === "Proxy")?.policy?.auth).toBe(AuthKind.AUTH_KIND_INTERNAL);
  });

  it("keeps the documentation and derives the signature label", () => {
    const del = catalog.find((r) => r.path === "/phoenix.auth.v1.AuthService/DeleteUser");
    expect(del?.label).toBe("phoenix.auth.v1.AuthService/DeleteUser");
    expect(del?.comment).toContain('Label: "phoenix.auth.v1.AuthService/DeleteUser"');
    expect(del?.requestType).toBe("phoenix.auth.v1.DeleteUserRequest");
  });

  it("lists the phoenix .proto files, all present under protoRoot", () => {
    expect(protoFiles()).toEqual([
      "phoenix/admin/v1/admin.proto",
      "phoenix/admin/v1/federation_admin.proto",
      "phoenix/admin/v1/queue_admin.proto",
      "phoenix/auth/v1/auth.proto",
      "phoenix/common/v1/common.proto",
      "phoenix/delivery/v1/delivery.proto",
      "phoenix/events/v1/events.proto",
      "phoenix/federation/v1/federation.proto",
      "phoenix/queue/v1/queue.proto",
    ]);
    for (const f of protoFiles()) expect(existsSync(join(protoRoot, f))).toBe(true);
  });

  it("loads into @grpc/proto-loader from the embedded set and from the files alike", () => {
    const fromSet = protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(fileDescriptorSet()));
    const fromFiles = protoLoader.loadSync([...protoFiles()], { includeDirs: [protoRoot] });
    const services = (def: protoLoader.PackageDefinition) =>
      Object.keys(def)
        .filter((k) => k.startsWith("phoenix.") && k.endsWith("Service"))
        .sort();
    expect(services(fromSet)).toEqual(services(fromFiles));
    expect(services(fromSet)).toHaveLength(8);
  });
});

describe("protoRoot of an installed package", () => {
  it("is the package's own proto/ folder, where loading the contracts works", async () => {
    // An installed layout: <pkg>/src (the module) beside <pkg>/proto (the packed copy), with no
    // repository proto/ three levels up. It sits under libs/proto so bare imports still resolve.
    const here = fileURLToPath(new URL(".", import.meta.url));
    const base = mkdtempSync(join(here, "..", ".installed-"));
    try {
      const pkg = join(base, "pkg");
      cpSync(join(here, "descriptors.ts"), join(pkg, "src", "descriptors.ts"));
      cpSync(join(here, "gen"), join(pkg, "src", "gen"), { recursive: true });
      cpSync(protoRoot, join(pkg, "proto"), { recursive: true });
      const installed = (await import(
        join(pkg, "src", "descriptors.ts")
      )) as typeof import("./descriptors.js");
      expect(installed.protoRoot).toBe(join(pkg, "proto", "/"));
      const loaded = protoLoader.loadSync([...installed.protoFiles()], {
        includeDirs: [installed.protoRoot],
      });
      expect(Object.keys(loaded)).toContain("phoenix.auth.v1.AuthService");
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
