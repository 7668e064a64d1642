import { randomBytes } from "node:crypto";
import { SigningKey } from "@phoenix/crypto";
import { common, queue, rpcLabel, signTbs } from "@phoenix/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transaction } from "../db/transaction.js";
import type { Database } from "../db/types.js";
import { RpcError } from "../errors/rpc-errors.js";
import { ReplayStore } from "../replay/replay-store.js";
import { createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { authenticateSignedRequest, type SignedRequestPolicy } from "./authenticator.js";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const METHOD = queue.QueueServiceService.dequeue;
const LABEL = rpcLabel(METHOD);
const clientKey = SigningKey.generate();
const clientId = new Uint8Array(16).fill(3);

let db: TestDatabase;
let policy: SignedRequestPolicy<Database>;

beforeAll(async () => {
  db = await createTestPglite();
  policy = {
    window: { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 },
    now: () => NOW,
    replay: new ReplayStore(randomBytes(32)),
  };
});
afterAll(async () => {
  await db.close();
});

function signed(overrides: Partial<common.RequestHeader> = {}, key = clientKey): Promise<common.Signed> {
  const header: common.RequestHeader = {
    label: LABEL,
    timestamp: new Date(NOW - 1_000),
    requestId: new Uint8Array(randomBytes(16)),
    sender: { $case: "qsClientId", value: clientId },
    ...overrides,
  };
  return signTbs(queue.DequeueTbs, { header, sequenceNumberStart: 0n, maxMessages: 1 }, (label, bytes) =>
    key.sign(label, bytes),
  );
}

async function authenticate(pending: Promise<common.Signed>) {
  const request = await pending;
  return authenticateSignedRequest(
    policy,
    { signed: request, type: queue.DequeueTbs, method: METHOD },
    () => ({
      signer: "the client record",
      key: clientKey.publicKey,
      replayScope: [clientId],
    }),
  );
}

/** The status code, reason and message of a refusal. */
async function refusal(run: Promise<unknown>): Promise<{ code: number; reason: number; message: string }> {
  const error = await run.then(
    () => expect.unreachable("the request was accepted"),
    (e: unknown) => e,
  );
  if (!(error instanceof RpcError)) throw error;
  const detail = error.details[0];
  const reason = detail === undefined ? -1 : common.ErrorDetail.decode(detail.value).reason;
  return { code: error.code, reason, message: error.message };
}

const UNAUTHENTICATED = 16;
const INVALID_ARGUMENT = 3;

describe("authenticateSignedRequest", () => {
  it("accepts a fresh request signed by the resolved key, and claims its id once", async () => {
    const request = signed();
    const opened = await authenticate(request);
    expect(opened.tbs.maxMessages).toBe(1);
    expect(opened.label).toBe("phoenix.queue.v1.QueueService/Dequeue");
    await transaction(db.db, (tx) => opened.claim(tx));
    const again = await authenticate(request);
    expect(await refusal(transaction(db.db, (tx) => again.claim(tx)))).toEqual({
      code: UNAUTHENTICATED,
      reason: common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
      message: "request id already used",
    });
  });

  it("leaves the id unclaimed when the request's transaction rolls back", async () => {
    const request = signed();
    const opened = await authenticate(request);
    await expect(
      transaction(db.db, async (tx) => {
        await opened.claim(tx);
        throw new Error("the handler failed");
      }),
    ).rejects.toThrow("the handler failed");
    await transaction(db.db, async (tx) => (await authenticate(request)).claim(tx));
  });

  it("refuses another RPC's label with WRONG_LABEL", async () => {
    const other = "phoenix.queue.v1.QueueService/DeleteClient";
    expect(await refusal(authenticate(signed({ label: other })))).toEqual({
      code: UNAUTHENTICATED,
      reason: common.ErrorReason.ERROR_REASON_WRONG_LABEL,
      message: `header label "${other}" is not this RPC's label "${LABEL}"`,
    });
  });

  it("refuses stale and future timestamps with STALE_TIMESTAMP, accepting the window's edge", async () => {
    for (const ts of [NOW - 5 * 60_000 - 1, NOW + 60_001]) {
      const refused = await refusal(authenticate(signed({ timestamp: new Date(ts) })));
      expect(refused.code).toBe(UNAUTHENTICATED);
      expect(refused.reason).toBe(common.ErrorReason.ERROR_REASON_STALE_TIMESTAMP);
      expect(refused.message).toMatch(/^tbs\.header\.timestamp: .*, outside the replay window$/);
    }
    await expect(authenticate(signed({ timestamp: new Date(NOW - 5 * 60_000) }))).resolves.toBeTruthy();
    await expect(authenticate(signed({ timestamp: new Date(NOW + 60_000) }))).resolves.toBeTruthy();
  });

  it("refuses a signature by another key with BAD_SIGNATURE naming the signer", async () => {
    expect(await refusal(authenticate(signed({}, SigningKey.generate())))).toEqual({
      code: UNAUTHENTICATED,
      reason: common.ErrorReason.ERROR_REASON_BAD_SIGNATURE,
      message: "signature of the client record does not verify",
    });
  });

  it("refuses a short request id and a missing request as MALFORMED", async () => {
    expect(await refusal(authenticate(signed({ requestId: new Uint8Array(15) })))).toEqual({
      code: INVALID_ARGUMENT,
      reason: common.ErrorReason.ERROR_REASON_MALFORMED,
      message: "tbs.header.request_id: must be 16 bytes",
    });
    const missing = authenticateSignedRequest(
      policy,
      { signed: undefined, type: queue.DequeueTbs, method: METHOD, field: "req" },
      () => expect.unreachable("no key is resolved for a missing request"),
    );
    expect(await refusal(missing)).toEqual({
      code: INVALID_ARGUMENT,
      reason: common.ErrorReason.ERROR_REASON_MALFORMED,
      message: "req: missing",
    });
  });

  it("checks the window after the signature when the policy says so", async () => {
    const late: SignedRequestPolicy<Database> = { ...policy, freshness: "after-signature" };
    const stale = await signed({ timestamp: new Date(NOW - 10 * 60_000) }, SigningKey.generate());
    const run = authenticateSignedRequest(
      late,
      { signed: stale, type: queue.DequeueTbs, method: METHOD },
      () => ({
        signer: "the client record",
        key: clientKey.publicKey,
        replayScope: [clientId],
      }),
    );
    expect((await refusal(run)).reason).toBe(common.ErrorReason.ERROR_REASON_BAD_SIGNATURE);
  });
});
