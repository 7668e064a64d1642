import { auth, type events, federation, rpcLabel } from "@phoenix/proto";
import { countQueries, fanOutEnvelope, type QueryCounter } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { Network } from "./support/harness.js";

const A = "a.test";
const GET_AS_CREDENTIALS = "/phoenix.auth.v1.AuthService/GetAsCredentials";
const B = "b.test";

/**
 * Statements (reads/writes) the gateway of B runs per inbound federation RPC from A (and A's for
 * the Proxy of a client request that B receives as Forward), as
 * measured: P4's goal is 1/1. The reasons for each exception are in docs/performance.md; a change
 * here must update both. Transaction BEGIN/COMMIT and the embedded bus's tables are not counted.
 */
const EXPECTED: Record<string, string> = {
  DeliverFanOut: "1r 2w (rate 0, replay 1)",
  "DeliverFanOut (first from A: fetches A's keys)": "2r 4w (rate 0, replay 1)",
  Forward: "0r 1w (rate 0, replay 1)",
  GetDomainKeys: "0r 0w (rate 0, replay 0)",
  "Proxy (at A)": "0r 0w (rate 0, replay 0)",
  ReportQueueDeleted: "1r 2w (rate 0, replay 1)",
};

describe("federation gateway database statements per inbound RPC (P4)", () => {
  let net: Network;
  let counter: QueryCounter;
  let counterA: QueryCounter;
  let upstream: FakeUpstream;
  beforeAll(async () => {
    // B's AS is a stand-in answering GetAsCredentials, for the Forward path.
    upstream = new FakeUpstream(new Map([[GET_AS_CREDENTIALS, { response: new Uint8Array() }]]));
    const port = await upstream.start();
    net = await Network.start([A, B], {
      env: { [B]: { FEDERATION_AS_ADDRESS: `127.0.0.1:${port}` } },
    });
    const a = net.node(A);
    const b = net.node(B);
    await b.stopGateway();
    counter = countQueries(b.db);
    b.db = counter.database;
    await b.start();
    await a.stopGateway();
    counterA = countQueries(a.db);
    a.db = counterA.database;
    await a.start();
  });
  afterAll(async () => {
    await net?.stop();
    upstream?.stop();
  });

  it("runs the counted reads and writes for each inbound RPC", async () => {
    const table: Record<string, string> = {};
    async function measure(name: string, run: () => Promise<unknown>): Promise<void> {
      const tally = await counter.measure(run);
      table[name] = `${tally.reads}r ${tally.writes}w (rate ${tally.rateLimit}, replay ${tally.replay})`;
      // QUERY_COUNTS_VERBOSE=1 prints the statements behind each row.
      if (process.env.QUERY_COUNTS_VERBOSE) console.log(name, tally.statements);
    }
    const client = net.federationClient(B);
    const key = net.node(A).running?.gateway.context.keys.active();
    if (!key) throw new Error("A has no key");
    // Lets the gateway's start-up work finish first (its delivery lanes load their peers).
    await client.getDomainKeys({});
    await measure("GetDomainKeys", () => client.getDomainKeys({}));

    const deliver = async () => {
      const signed = await signFederationRequest(
        federation.DeliverFanOutTbs,
        rpcLabel(federation.FederationServiceService.deliverFanOut),
        A,
        key.signingKey,
        { envelope: fanOutEnvelope(A, B, new Uint8Array([1, 2, 3])) },
      );
      return client.deliverFanOut({ signed });
    };
    await measure("DeliverFanOut (first from A: fetches A's keys)", deliver);
    await measure("DeliverFanOut", deliver);

    const envelope: events.FederationEnvelope = {
      envelopeId: new Uint8Array(16).fill(6),
      sourceDomain: A,
      destinationDomain: B,
      content: {
        $case: "queueDeleted",
        value: {
          eventId: new Uint8Array(16).fill(5),
          groupId: { uuid: new Uint8Array(16).fill(1), domain: B },
          recipient: { domain: A, sealedQueueConfig: new Uint8Array([4]) },
          reportedAt: new Date(),
        },
      },
    };
    const reportSigned = await signFederationRequest(
      federation.ReportQueueDeletedTbs,
      rpcLabel(federation.FederationServiceService.reportQueueDeleted),
      A,
      key.signingKey,
      { envelope },
    );
    await measure("ReportQueueDeleted", () => client.reportQueueDeleted({ signed: reportSigned }));

    // A client's request proxied by A's gateway (Proxy, internal) and forwarded to B (Forward).
    const request = auth.GetAsCredentialsRequest.encode({
      domain: B,
    } as auth.GetAsCredentialsRequest).finish();
    const proxy = () =>
      net.proxyClient(A).proxy({ destinationDomain: B, method: GET_AS_CREDENTIALS, request });
    await proxy(); // the first call fetches keys (A: B's, for the answer's check; B: A's)
    let forward: Awaited<ReturnType<QueryCounter["measure"]>> | undefined;
    const proxied = await counterA.measure(async () => {
      forward = await counter.measure(proxy);
    });
    table["Proxy (at A)"] =
      `${proxied.reads}r ${proxied.writes}w (rate ${proxied.rateLimit}, replay ${proxied.replay})`;
    if (forward)
      table.Forward = `${forward.reads}r ${forward.writes}w (rate ${forward.rateLimit}, replay ${forward.replay})`;
    if (process.env.QUERY_COUNTS_VERBOSE)
      console.log("Proxy/Forward", proxied.statements, forward?.statements);

    expect(table).toEqual(EXPECTED);
  });
});
