import { randomBytes } from "node:crypto";
import { HpkeKeyPair, SigningKey } from "@phoenix/crypto";
import {
  AuthServiceDefinition,
  ClientError,
  common,
  createChannel,
  createClient,
  errorDetailFromMetadata,
  type Metadata,
  QueueServiceDefinition,
  queue,
  requestHeader,
  rpcLabel,
  Status,
  signTbs,
} from "@phoenix/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Homeserver, startHomeserver } from "../src/index.js";

// What libs/proto/README.md ("Calling a service from Node") shows a client developer, run
// against a real homeserver: the generated nice-grpc clients with nothing of @phoenix/wire.
describe("the generated promise clients (@phoenix/proto + nice-grpc)", () => {
  let hs: Homeserver;
  beforeAll(async () => {
    hs = await startHomeserver({ domain: "sdk.example" });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it("calls a public RPC, a signed one and the Listen stream; refusals carry a status and an ErrorDetail", async () => {
    const asChannel = createChannel(hs.addresses.auth);
    const qsChannel = createChannel(hs.addresses.queue);
    try {
      const as = createClient(AuthServiceDefinition, asChannel);
      const qs = createClient(QueueServiceDefinition, qsChannel);

      const credentials = await as.getAsCredentials({ domain: "" }, { signal: AbortSignal.timeout(10_000) });
      expect(credentials.domain).toBe("sdk.example");
      expect(credentials.asCredentials.length).toBeGreaterThan(0);

      // A signed request: a proof-of-possession CreateUser on the QS.
      const userKey = SigningKey.generate();
      const clientKey = SigningKey.generate();
      const tbs: queue.CreateUserTbs = {
        header: requestHeader(rpcLabel(queue.QueueServiceService.createUser), undefined),
        userRecordAuthKey: userKey.publicKey,
        friendshipToken: new Uint8Array(randomBytes(32)),
        clientRecordAuthKey: clientKey.publicKey,
        queueEncryptionKey: HpkeKeyPair.generate().publicKey.bytes,
        sealedPushToken: new Uint8Array(),
      };
      const signed = await signTbs(queue.CreateUserTbs, tbs, (label, bytes) => userKey.sign(label, bytes));
      const { qsClientId } = await qs.createUser({ signed });
      expect(qsClientId).toHaveLength(16);

      // The same signed request again is a replay: refused, with a machine-readable detail.
      let trailer: Metadata | undefined;
      const replay = await qs
        .createUser({ signed }, { onTrailer: (t) => (trailer = t) })
        .catch((e: unknown) => e);
      expect(replay).toBeInstanceOf(ClientError);
      expect((replay as ClientError).code).toBe(Status.UNAUTHENTICATED);
      expect(errorDetailFromMetadata(trailer)?.reason).toBe(common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST);

      // Listen: a bidi stream as async iterables; what is queued comes first, then "drained".
      const init: queue.ListenTbs = {
        header: requestHeader(rpcLabel(queue.QueueServiceService.listen), {
          $case: "qsClientId",
          value: qsClientId,
        }),
        sequenceNumberStart: 0n,
      };
      const initSigned = await signTbs(queue.ListenTbs, init, (label, bytes) => clientKey.sign(label, bytes));
      const stop = new AbortController();
      async function* requests(): AsyncGenerator<queue.ListenRequest> {
        yield { request: { $case: "init", value: initSigned } };
        await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
      }
      const events: string[] = [];
      for await (const response of qs.listen(requests(), { signal: stop.signal })) {
        events.push(response.event?.$case ?? "none");
        if (response.event?.$case === "empty") break;
      }
      stop.abort();
      expect(events.at(-1)).toBe("empty");
      expect(events.slice(0, -1).every((e) => e === "message")).toBe(true);

      // Cancellation: an aborted signal ends the call before it is answered.
      const aborted = await as
        .getAsCredentials({ domain: "" }, { signal: AbortSignal.abort() })
        .catch((e: unknown) => e);
      expect((aborted as Error).name).toBe("AbortError");
    } finally {
      asChannel.close();
      qsChannel.close();
    }
  });
});
