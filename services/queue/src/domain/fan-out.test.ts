import { randomBytes, toHex } from "@phoenix/crypto";
import { events } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import {
  blocklistEntry,
  decodeFanOut,
  envelopeId,
  forwardRemote,
  MalformedFanOutError,
  queueDeletedEventId,
  reportDeleted,
} from "./fan-out.js";
import { StorageKeys } from "./storage-keys.js";
import { qsSubjects } from "./subjects.js";

const subjects = qsSubjects();

function fanOut(groupDomain = "alpha.example"): events.FanOut {
  return {
    fanOutId: randomBytes(16),
    groupId: { uuid: randomBytes(16), domain: groupDomain },
    recipients: [],
    payload: randomBytes(10),
    suppressNotifications: false,
  };
}

describe("fan-out helpers", () => {
  it("derive the same ids for a redelivered fan-out", () => {
    const f = fanOut();
    const recipient = { domain: "alpha.example", sealedQueueConfig: randomBytes(40) };
    expect(queueDeletedEventId(f.fanOutId, recipient)).toEqual(queueDeletedEventId(f.fanOutId, recipient));
    expect(envelopeId(f.fanOutId, "beta.example")).not.toEqual(envelopeId(f.fanOutId, "gamma.example"));
  });

  it("forward one envelope per remote domain with only that domain's recipients", () => {
    const f = fanOut();
    const b1 = { domain: "beta.example", sealedQueueConfig: randomBytes(30) };
    const b2 = { domain: "beta.example", sealedQueueConfig: randomBytes(30) };
    const g = { domain: "gamma.example", sealedQueueConfig: randomBytes(30) };
    const out = forwardRemote(
      f,
      new Map([
        ["beta.example", [b1, b2]],
        ["gamma.example", [g]],
      ]),
      "alpha.example",
      subjects.federationOutbound,
    );
    expect(out.map((o) => o.subject)).toEqual([
      "phoenix.federation.outbound.beta_example",
      "phoenix.federation.outbound.gamma_example",
    ]);
    const beta = events.FederationEnvelope.decode(out[0]?.payload ?? new Uint8Array());
    expect(beta.content?.$case === "fanOut" && beta.content.value.recipients.length).toBe(2);
    expect(out[0]?.id).toBe(toHex(beta.envelopeId));
  });

  it("route a queue-deleted report to the local DS or to the group's domain", () => {
    const recipient = { domain: "alpha.example", sealedQueueConfig: randomBytes(30) };
    const local = reportDeleted(fanOut(), recipient, "alpha.example", new Date(), subjects);
    expect(local.subject).toBe("phoenix.queue_deleted");
    const remote = reportDeleted(fanOut("beta.example"), recipient, "alpha.example", new Date(), subjects);
    expect(remote.subject).toBe("phoenix.federation.outbound.beta_example");
    const envelope = events.FederationEnvelope.decode(remote.payload);
    expect(envelope.content?.$case).toBe("queueDeleted");
  });

  it("refuse malformed fan-outs as not retryable", () => {
    expect(() => decodeFanOut(Uint8Array.of(0xff, 0xff))).toThrow(MalformedFanOutError);
    const short = events.FanOut.encode({ ...fanOut(), fanOutId: randomBytes(3) }).finish();
    expect(() => decodeFanOut(short)).toThrow(MalformedFanOutError);
  });

  it("hash blocklist entries per queue, so one group looks different in two queues", () => {
    const storage = new StorageKeys(randomBytes(32));
    const group = { uuid: randomBytes(16), domain: "alpha.example" };
    const a = blocklistEntry(storage, randomBytes(16), group);
    const b = blocklistEntry(storage, randomBytes(16), group);
    expect(toHex(a)).not.toBe(toHex(b));
    expect(toHex(a)).not.toContain(toHex(group.uuid));
  });
});
