// The storage a harness creates on the shared Postgres and NATS servers, and its removal: every
// deployment, homeserver and federation the harness starts uses its own databases and streams.
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";

/** Runs `statements` in order on the Postgres server of `serverUrl` (CREATE/DROP DATABASE). */
export async function adminQueries(serverUrl: string, statements: readonly string[]): Promise<void> {
  await withAdminClient(serverUrl, async (client) => {
    for (const statement of statements) await client.query(statement);
  });
}

/**
 * Drops the databases, closing their remaining connections (FORCE); tries every one, then throws
 * what failed. Names are built by the harness from [a-z0-9_] only.
 */
export async function dropDatabases(serverUrl: string, names: readonly string[]): Promise<void> {
  const failures: unknown[] = [];
  await withAdminClient(serverUrl, async (client) => {
    for (const name of names) {
      await client
        .query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
        .catch((e: unknown) => failures.push(e));
    }
  });
  if (failures.length > 0) throw new AggregateError(failures, "dropping test databases failed");
}

/** Deletes the JetStream streams named (one that does not exist is no error). */
export async function deleteStreams(natsUrl: string, names: readonly string[]): Promise<void> {
  await withJetStream(natsUrl, async (jsm) => {
    for (const name of names) await jsm.streams.delete(name).catch(() => false);
  });
}

/** Deletes every stream of the bus namespaces (stream names end in `_<namespace>`). */
export async function deleteNamespaceStreams(natsUrl: string, namespaces: readonly string[]): Promise<void> {
  await withJetStream(natsUrl, async (jsm) => {
    const doomed: string[] = [];
    for await (const name of jsm.streams.names()) {
      if (namespaces.some((ns) => name.endsWith(`_${ns}`))) doomed.push(name);
    }
    for (const name of doomed) await jsm.streams.delete(name).catch(() => false);
  });
}

async function withJetStream(natsUrl: string, use: (jsm: JetStreamManager) => Promise<void>): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: "test-harness" });
  try {
    await use(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

async function withAdminClient(serverUrl: string, use: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: "test-harness" });
  client.on("error", () => {}); // a dying idle connection is reported by the failing query
  await client.connect();
  try {
    await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
