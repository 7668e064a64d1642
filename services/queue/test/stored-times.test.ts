import { SigningKey } from "@phoenix/crypto";
import { queue, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishFanOut } from "./support/fan-out.js";
import { Harness } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await Harness.start();
});
afterAll(async () => {
  await h?.stop();
});

type Rows<T> = { rows: T[] };

async function query<T>(text: ReturnType<typeof sql>): Promise<T[]> {
  return ((await h.db.db.execute(text)) as unknown as Rows<T>).rows;
}

describe("times in a database snapshot (issue #13)", () => {
  it("user records have none, and every other user-related time is coarse (whole minutes or coarser)", async () => {
    const alice = await h.newUser();
    const bob = await h.newUser();
    await publishFanOut(h, { recipients: [alice.qsReference(), bob.qsReference()] });
    await eventually(async () => ((await alice.dequeue(0n)).messages.length === 2 ? true : undefined));
    // An auth key change keeps the old key with a grace end.
    const next = SigningKey.generate();
    await h.client.updateClient({
      signed: await alice.signed(queue.UpdateClientTbs, "updateClient", {
        clientRecordAuthKey: next.publicKey,
        queueEncryptionKey: alice.queueKeyPair.publicKey.bytes,
      }),
    });
    alice.clientKey = next;
    // A Listen stream holds bob's queue with a lease.
    const call = h.client.listen();
    const responses = call.responses[Symbol.asyncIterator]();
    const init = await signTbs(
      queue.ListenTbs,
      {
        header: requestHeader(rpcLabel(queue.QueueServiceService.listen), {
          $case: "qsClientId",
          value: bob.clientId,
        }),
        sequenceNumberStart: 0n,
      },
      (label, bytes) => bob.clientKey.sign(label, bytes),
    );
    await call.send({ request: { $case: "init", value: init } });
    await responses.next();
    await eventually(async () => {
      const [row] = await query<{ held: boolean }>(
        sql`select listener_until is not null as held from qs_clients where client_id = ${bob.clientId}`,
      );
      return row?.held ? true : undefined;
    });

    const columns = await query<{ table_name: string; column_name: string }>(sql`
      select table_name, column_name from information_schema.columns
      where table_schema = 'public' and data_type like 'timestamp%' order by 1, 2`);
    // The QS's own key times belong to the server, not to any user.
    const userTimes = columns.filter((c) => c.table_name !== "qs_keys");
    expect(userTimes.filter((c) => c.table_name === "qs_users")).toEqual([]);
    const fine: string[] = [];
    let checked = 0;
    for (const { table_name: table, column_name: column } of userTimes) {
      const values = await query<{ ms: string }>(
        sql.raw(
          `select (extract(epoch from "${column}") * 1000)::numeric::text as ms from "${table}" where "${column}" is not null`,
        ),
      );
      checked += values.length;
      for (const v of values) if (Number(v.ms) % 60_000 !== 0) fine.push(`${table}.${column} = ${v.ms}`);
    }
    call.end();
    await responses.return?.();
    // last_key_update_at, listener_until, last_active_at, expires_at, valid_until, handled_at.
    expect(checked).toBeGreaterThanOrEqual(6);
    expect(fine).toEqual([]);
  });
});
