import * as grpc from "@grpc/grpc-js";
import { common, delivery } from "@phoenix/proto";
import { decodeRichStatus } from "@phoenix/runtime/errors";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { call, type DeliveryInstance, Harness } from "./support/harness.js";

function forwardedFor(address: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("x-forwarded-for", address);
  return metadata;
}

async function refusal(p: Promise<unknown>): Promise<grpc.ServiceError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e as grpc.ServiceError,
  );
  expect(error, "the call should have been refused").toBeInstanceOf(Error);
  return error as grpc.ServiceError;
}

async function reservations(h: Harness): Promise<number> {
  const result = (await h.db.db.execute(sql`SELECT count(*) AS n FROM group_reservations`)) as unknown as {
    rows: { n: unknown }[];
  };
  return Number(result.rows[0]?.n);
}

describe("RequestGroupId is rate-limited per caller (delivery.proto)", () => {
  let h: Harness | undefined;
  let second: DeliveryInstance | undefined;
  let secondClient: delivery.DeliveryServiceClient | undefined;
  afterEach(async () => {
    secondClient?.close();
    await second?.stop();
    await h?.stop();
    h = second = secondClient = undefined;
  });

  it("refuses RESOURCE_EXHAUSTED past the limit, on any replica, reserving nothing", async () => {
    const env = { DS_CALLER_RATE_GROUP_ID_PER_MINUTE: "3" };
    let now = Date.now();
    h = await Harness.start({ env, now: () => now });
    // A second replica on the same database.
    second = await h.startInstance({ env, now: () => now });
    secondClient = new delivery.DeliveryServiceClient(
      `127.0.0.1:${second.port}`,
      grpc.credentials.createInsecure(),
    );
    const first = h.client;
    const other = secondClient;
    const ask = (client: delivery.DeliveryServiceClient, metadata = new grpc.Metadata()) =>
      call<delivery.RequestGroupIdResponse>((d) => client.requestGroupId({}, metadata, d));
    await ask(first);
    await ask(other);
    await ask(first);
    const refused = await refusal(ask(other));
    expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused.details).toContain("DS_CALLER_RATE_GROUP_ID_PER_MINUTE=3 per minute");
    const [raw] = refused.metadata.get("grpc-status-details-bin");
    const rich = decodeRichStatus(new Uint8Array(raw as Buffer));
    const detail = rich.details.find((d) => d.typeUrl.endsWith("phoenix.common.v1.ErrorDetail"));
    expect(detail && common.ErrorDetail.decode(detail.value).reason).toBe(
      common.ErrorReason.ERROR_REASON_RATE_LIMIT,
    );
    expect((await refusal(ask(first))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await reservations(h)).toBe(3);
    // The bucket refills with time.
    now += 20_000;
    await ask(first);
    expect(await reservations(h)).toBe(4);
  });

  it("gives every client behind a trusted proxy its own budget", async () => {
    h = await Harness.start({
      env: { DS_CALLER_RATE_GROUP_ID_PER_MINUTE: "1", DS_TRUSTED_PROXIES: "127.0.0.1,::1" },
    });
    const client = h.client;
    const ask = (address: string) =>
      call<delivery.RequestGroupIdResponse>((d) => client.requestGroupId({}, forwardedFor(address), d));
    await ask("198.51.100.1");
    await ask("198.51.100.2");
    expect((await refusal(ask("198.51.100.1"))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});
