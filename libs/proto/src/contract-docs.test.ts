import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { protoRoot } from "./descriptors.js";
import { type ProtoRpc, parseProtoText, readProtoTree } from "./proto-text.js";

// The contracts are what every service implements: these checks keep their documentation and
// REST mapping complete as RPCs are added.
const { rpcs, messages } = readProtoTree(protoRoot, join(protoRoot, "phoenix"));
const CLIENT_FACING = new Set(["AuthService", "DeliveryService", "QueueService"]);

// The phrase an `Auth:` line must contain for each rpc_policy auth kind.
const AUTH_PHRASES: Record<string, string> = {
  AUTH_KIND_PUBLIC: "public",
  AUTH_KIND_PROOF_OF_POSSESSION: "proof of possession",
  AUTH_KIND_CLIENT_CREDENTIAL: "client credential signature",
  AUTH_KIND_HANDLE: "handle signature",
  AUTH_KIND_DS_LEAF: "DS leaf signature",
  AUTH_KIND_DS_KEY_PACKAGE: "DS KeyPackage signature",
  AUTH_KIND_EAR_KEY: "EAR key",
  AUTH_KIND_QS_USER_RECORD: "QS user record signature",
  AUTH_KIND_QS_CLIENT_RECORD: "QS client record signature",
  AUTH_KIND_FRIENDSHIP_TOKEN: "friendship token",
  AUTH_KIND_FEDERATION_DOMAIN: "federation domain signature",
  AUTH_KIND_INTERNAL: "internal",
  AUTH_KIND_OPERATOR: "operator signature",
};

function fullName(rpc: ProtoRpc): string {
  return `${rpc.pkg}.${rpc.service}/${rpc.name}`;
}

function messageBody(pkg: string, name: string): string | undefined {
  const [msgPkg, msgName] = name.includes(".")
    ? [name.slice(0, name.lastIndexOf(".")), name.slice(name.lastIndexOf(".") + 1)]
    : [pkg, name];
  return messages.find((m) => m.pkg === msgPkg && m.name === msgName)?.body;
}

function isSignedRequest(rpc: ProtoRpc): boolean {
  return /phoenix\.common\.v1\.Signed\s+\w+\s*=/.test(messageBody(rpc.pkg, rpc.requestType) ?? "");
}

function isClientFacingUnary(rpc: ProtoRpc): boolean {
  return CLIENT_FACING.has(rpc.service) && !rpc.clientStreaming && !rpc.serverStreaming;
}

describe("contract documentation", () => {
  it("finds every service and a complete set of RPCs", () => {
    const services = new Set(rpcs.map((r) => `${r.pkg}.${r.service}`));
    expect([...services].sort()).toEqual([
      "phoenix.admin.v1.AuthAdminService",
      "phoenix.admin.v1.FederationAdminService",
      "phoenix.admin.v1.QueueAdminService",
      "phoenix.auth.v1.AuthService",
      "phoenix.delivery.v1.DeliveryService",
      "phoenix.federation.v1.FederationProxyService",
      "phoenix.federation.v1.FederationService",
      "phoenix.queue.v1.QueueService",
    ]);
    expect(rpcs.length).toBeGreaterThanOrEqual(55);
  });

  it("documents Auth: and Errors: on every rpc", () => {
    const missing = rpcs
      .filter((r) => !/^Auth: \S/m.test(r.comment) || !/^Errors: \S/m.test(r.comment))
      .map(fullName);
    expect(missing).toEqual([]);
  });

  it("says what every rpc does before its Auth: line", () => {
    const undocumented = rpcs.filter((r) => r.comment.split(/^Auth:/m)[0]?.trim().length === 0).map(fullName);
    expect(undocumented).toEqual([]);
  });

  it("gives every client-facing unary rpc a google.api.http option under /v1/", () => {
    const missing = rpcs
      .filter(isClientFacingUnary)
      .filter((r) => !/option \(google\.api\.http\) = \{[^}]*"\/v1\//.test(r.body))
      .map(fullName);
    expect(missing).toEqual([]);
  });

  it("gives streaming and server-to-server rpcs no http option, and streaming ones a WebSocket note", () => {
    const mapped = rpcs
      .filter((r) => !isClientFacingUnary(r) && r.body.includes("google.api.http"))
      .map(fullName);
    expect(mapped).toEqual([]);
    const streaming = rpcs.filter((r) => r.clientStreaming || r.serverStreaming);
    expect(streaming.length).toBeGreaterThanOrEqual(3);
    expect(streaming.filter((r) => !r.comment.includes("WebSocket")).map(fullName)).toEqual([]);
  });

  it("maps each REST route to exactly one rpc", () => {
    const routes = rpcs.flatMap((r) => {
      const m = /(get|post|put|patch|delete):\s*"([^"]+)"/.exec(r.body);
      return m ? [`${m[1]} ${m[2]}`] : [];
    });
    expect(routes.length).toBe(rpcs.filter(isClientFacingUnary).length);
    expect(new Set(routes).size).toBe(routes.length);
  });

  it("declares an rpc_policy whose auth kind matches the Auth: line", () => {
    const mismatched = rpcs.flatMap((r) => {
      const kind = /auth:\s*(AUTH_KIND_\w+)/.exec(r.body)?.[1];
      // The Auth: paragraph, which may wrap onto the following lines.
      const authLine = (/^Auth: ([\s\S]*?)(?=^(?:Label|Errors):)/m.exec(r.comment)?.[1] ?? "").replace(
        /\s+/g,
        " ",
      );
      const phrase = kind ? AUTH_PHRASES[kind] : undefined;
      return phrase && authLine.toLowerCase().includes(phrase.toLowerCase())
        ? []
        : [`${fullName(r)} (${kind})`];
    });
    expect(mismatched).toEqual([]);
  });

  it("names the signature label of every signed request, and only of those", () => {
    const signed = rpcs.filter(isSignedRequest);
    expect(signed.length).toBeGreaterThan(30);
    const wrong = rpcs.filter((r) => {
      const label = /^Label: "([^"]+)"/m.exec(r.comment)?.[1];
      return isSignedRequest(r) ? label !== fullName(r) : label !== undefined;
    });
    expect(wrong.map(fullName)).toEqual([]);
  });

  it("has a <Method>Tbs message starting with the RequestHeader for every signed request", () => {
    const bad = rpcs.filter(isSignedRequest).filter((r) => {
      const body = messageBody(r.pkg, `${r.name}Tbs`);
      const firstField = body?.split("\n").find((l) => /=\s*\d+;/.test(l));
      return !firstField || !/phoenix\.common\.v1\.RequestHeader header = 1;/.test(firstField);
    });
    expect(bad.map(fullName)).toEqual([]);
    const strayTbs = messages.filter(
      (m) => m.name.endsWith("Tbs") && !/RequestHeader header = 1;/.test(m.body),
    );
    expect(strayTbs.map((m) => m.name)).toEqual([]);
  });

  it("lists the status codes each rpc returns as gRPC code names", () => {
    const codes =
      /\b(OK|CANCELLED|UNKNOWN|INVALID_ARGUMENT|DEADLINE_EXCEEDED|NOT_FOUND|ALREADY_EXISTS|PERMISSION_DENIED|RESOURCE_EXHAUSTED|FAILED_PRECONDITION|ABORTED|OUT_OF_RANGE|UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS|UNAUTHENTICATED)\b/;
    const vague = rpcs
      .filter((r) => !codes.test(r.comment.split(/^Errors:/m)[1] ?? "") && !/passes through/.test(r.comment))
      .map(fullName);
    expect(vague).toEqual([]);
  });
});

describe("the proto reader behind these checks", () => {
  it("reports an rpc without Auth:/Errors: and without an http option", () => {
    const { rpcs: parsed } = parseProtoText(
      [
        "package x.v1;",
        "service DemoService {",
        "  // Does something.",
        "  rpc Undocumented(UndocumentedRequest) returns (UndocumentedResponse);",
        "  // Does more.",
        "  //",
        "  // Auth: public.",
        "  // Errors: NOT_FOUND (nothing).",
        "  rpc Documented(DocumentedRequest) returns (DocumentedResponse) {",
        '    option (google.api.http) = {post: "/v1/demo" body: "*"};',
        "  }",
        "}",
      ].join("\n"),
      "demo.proto",
    );
    expect(
      parsed.map((r) => [r.name, /^Auth:/m.test(r.comment), r.body.includes("google.api.http")]),
    ).toEqual([
      ["Undocumented", false, false],
      ["Documented", true, true],
    ]);
  });
});
