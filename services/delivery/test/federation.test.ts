// Requests about a group of another domain go to that group's DS through the federation
// gateway's FederationProxyService (a fake one here): the client's signed bytes unchanged, the
// peer's answer or status back as is, and nothing stored here.
import { randomBytes } from "node:crypto";
import { SigningKey } from "@phoenix/crypto";
import { common, delivery, rpcLabel } from "@phoenix/proto";
import { errorDetail, FailedPreconditionError } from "@phoenix/runtime/errors";
import { FakeFederationProxy } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, codeOf, Harness, Service } from "./support/harness.js";

const BETA = "beta.example";
const remoteGroup = (): common.QualifiedGroupId => ({ uuid: new Uint8Array(randomBytes(16)), domain: BETA });

type Rpc = Exclude<keyof typeof Service, "requestGroupId" | "createGroup">;

/** The federated DS RPCs with the tbs type that carries their group id. */
const SIGNED: [Rpc, { encode(tbs: never): { finish(): Uint8Array }; fromPartial(o: object): unknown }][] = [
  ["groupOperation", delivery.GroupOperationTbs],
  ["joinConnectionGroup", delivery.JoinConnectionGroupTbs],
  ["resync", delivery.ResyncTbs],
  ["selfRemove", delivery.SelfRemoveTbs],
  ["sendMessage", delivery.SendMessageTbs],
  ["deleteGroup", delivery.DeleteGroupTbs],
  ["welcomeInfo", delivery.WelcomeInfoTbs],
  ["externalCommitInfo", delivery.ExternalCommitInfoTbs],
  ["updateQueueInfo", delivery.UpdateQueueInfoTbs],
  ["updateProfileKey", delivery.UpdateProfileKeyTbs],
];

type Method = {
  path: string;
  requestSerialize(value: never): Buffer;
  responseSerialize(value: never): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
};
const methodOf = (rpc: Rpc) => Service[rpc] as unknown as Method;

describe("DS requests about other domains' groups", () => {
  let h: Harness;
  let proxy: FakeFederationProxy;
  const key = SigningKey.generate();
  beforeAll(async () => {
    proxy = await FakeFederationProxy.start();
    h = await Harness.start({ env: { FEDERATION_PROXY_ADDRESS: proxy.address } });
  });
  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
  });

  function invoke(rpc: Rpc, request: unknown): Promise<unknown> {
    const fn = h.client[rpc] as unknown as (req: unknown, done: (e: unknown, r: unknown) => void) => void;
    return call((done) => fn.call(h.client, request, done as never));
  }

  /** A request of `rpc` about a group of beta.example, signed by a key this DS never saw. */
  function remoteRequest(rpc: Rpc): unknown {
    const groupId = remoteGroup();
    const entry = SIGNED.find(([name]) => name === rpc);
    if (entry === undefined) return { groupId, groupStateEarKey: new Uint8Array(randomBytes(32)) };
    const [, type] = entry;
    const tbs = type.fromPartial({
      header: h.header(rpcLabel(methodOf(rpc) as never), { $case: "leafIndex", value: 3 }),
      groupId,
    });
    const bytes = type.encode(tbs as never).finish();
    return {
      signed: { tbs: bytes, signature: key.sign(rpcLabel(methodOf(rpc) as never), bytes) },
      groupStateEarKey: new Uint8Array(randomBytes(32)),
    };
  }

  const ALL: Rpc[] = [...SIGNED.map(([rpc]) => rpc), "connectionGroupInfo"];

  it.each(ALL)(
    "%s goes to the group's DS with the client's bytes, and its answer comes back",
    async (rpc) => {
      proxy.calls.length = 0;
      const method = methodOf(rpc);
      // The peer's answer: the response type with every field at its default, plus a marker where
      // the type has room for one, compared byte for byte.
      const response = new Uint8Array(
        method.responseSerialize(method.responseDeserialize(Buffer.alloc(0)) as never),
      );
      proxy.answer = async () => response;
      const request = remoteRequest(rpc);
      const before = h.fanOuts.length;
      const answer = await invoke(rpc, request);
      expect(new Uint8Array(method.responseSerialize(answer as never))).toEqual(response);
      expect(proxy.calls).toHaveLength(1);
      expect(proxy.calls[0]?.destination).toBe(BETA);
      expect(proxy.calls[0]?.method).toBe(method.path);
      expect(proxy.calls[0]?.request).toEqual(new Uint8Array(method.requestSerialize(request as never)));
      expect(h.fanOuts.length).toBe(before);
    },
  );

  it("returns the group DS's refusal unchanged (wrong epoch with its detail)", async () => {
    const detail = common.ErrorDetail.fromPartial({
      reason: common.ErrorReason.ERROR_REASON_WRONG_EPOCH,
      detail: { $case: "wrongEpoch", value: { currentEpoch: 7n, requestEpoch: 5n } },
    });
    proxy.answer = async () => {
      throw new FailedPreconditionError("commit for epoch 5, the group is at epoch 7", {
        details: [errorDetail(detail)],
      });
    };
    const error = await invoke("groupOperation", remoteRequest("groupOperation")).then(
      () => undefined,
      (e: { code: number; details: string; metadata: { get(k: string): unknown[] } }) => e,
    );
    expect(error?.details).toBe("commit for epoch 5, the group is at epoch 7");
    expect(await codeOf(Promise.reject(error))).toBe("FAILED_PRECONDITION");
    expect(error?.metadata.get("grpc-status-details-bin")).toHaveLength(1);
  });

  it("does not forward a request whose tbs does not decode", async () => {
    proxy.calls.length = 0;
    const garbage = {
      signed: { tbs: new Uint8Array(64).fill(0xff), signature: new Uint8Array(64) },
      groupStateEarKey: new Uint8Array(32),
    };
    expect(await codeOf(invoke("sendMessage", garbage))).toBe("INVALID_ARGUMENT");
    expect(proxy.calls).toEqual([]);
  });
});

describe("DS without a federation gateway", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("answers UNAVAILABLE naming the group's domain", async () => {
    const error = await call((done) =>
      h.client.connectionGroupInfo({ groupId: remoteGroup(), groupStateEarKey: new Uint8Array(32) }, done),
    ).then(
      () => undefined,
      (e: { details: string }) => e,
    );
    expect(await codeOf(Promise.reject(error))).toBe("UNAVAILABLE");
    expect(error?.details).toContain(BETA);
  });
});
