import { randomBytes } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { delivery, rpcLabel } from "@phoenix/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, DOMAIN, Harness, Service } from "./support/harness.js";

type Unary = (req: never, done: (err: grpc.ServiceError | null, res: unknown) => void) => unknown;

describe("DS refuses malformed input with a clean status", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  const signedRpcs = [
    "createGroup",
    "groupOperation",
    "joinConnectionGroup",
    "resync",
    "selfRemove",
    "sendMessage",
    "deleteGroup",
    "welcomeInfo",
    "externalCommitInfo",
    "updateQueueInfo",
    "updateProfileKey",
  ] as const;

  function invoke(name: string, req: unknown): Promise<unknown> {
    const fn = (h.client as unknown as Record<string, Unary>)[name];
    if (fn === undefined) throw new Error(`no rpc ${name}`);
    return new Promise((resolve, reject) =>
      fn.call(h.client, req as never, (e, r) => (e ? reject(e) : resolve(r))),
    );
  }

  it.each(signedRpcs)("%s: garbage tbs is INVALID_ARGUMENT, a missing signature too", async (name) => {
    const garbage = {
      signed: { tbs: new Uint8Array(randomBytes(64)).fill(0xff), signature: new Uint8Array(64) },
      groupStateEarKey: new Uint8Array(32),
    };
    expect(await codeOf(invoke(name, garbage))).toBe("INVALID_ARGUMENT");
    expect(await codeOf(invoke(name, { groupStateEarKey: new Uint8Array(32) }))).toBe("INVALID_ARGUMENT");
  });

  it("an unknown group is NOT_FOUND, an oversized commit RESOURCE_EXHAUSTED, a wrong label UNAUTHENTICATED", async () => {
    const groupId = { uuid: new Uint8Array(randomBytes(16)), domain: DOMAIN };
    const key = (await import("@phoenix/crypto")).SigningKey.generate();
    const tbs = (
      commit: Uint8Array,
      label = rpcLabel(Service.groupOperation),
    ): delivery.GroupOperationTbs => ({
      header: h.header(label, { $case: "leafIndex", value: 0 }),
      groupId,
      commit,
      groupInfo: new Uint8Array(),
      addedClients: undefined,
    });
    const send = async (t: delivery.GroupOperationTbs) =>
      invoke("groupOperation", {
        signed: await h.sign(delivery.GroupOperationTbs, t, key),
        groupStateEarKey: new Uint8Array(32),
      });
    expect(await codeOf(send(tbs(new Uint8Array(10))))).toBe("NOT_FOUND");
    expect(await codeOf(send(tbs(new Uint8Array(1024 * 1024 + 1))))).toBe("RESOURCE_EXHAUSTED");
    expect(await codeOf(send(tbs(new Uint8Array(10), rpcLabel(Service.sendMessage))))).toBe(
      "UNAUTHENTICATED",
    );
    expect(
      await codeOf(
        invoke("connectionGroupInfo", {
          groupId: { ...groupId, domain: "Other Example" },
          groupStateEarKey: new Uint8Array(32),
        }),
      ),
    ).toBe("INVALID_ARGUMENT");
  });
});
