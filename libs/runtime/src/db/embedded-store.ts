import { PGlite, type QueryOptions, type Results, type Transaction } from "@electric-sql/pglite";

/**
 * Schemas the runtime's own tables live in. On Postgres every service has a database of its own,
 * so each service has its own copy of them; in a shared embedded store each namespace gets a
 * renamed copy (`<namespace>_runtime`, …) instead.
 */
const RENAMED_SCHEMAS = ["phoenix_runtime", "phoenix_rate_limit"] as const;

/** A namespace becomes a schema name: lower-case letters, digits and `_`, starting with a letter. */
const NAMESPACE = /^[a-z][a-z0-9_]{0,39}$/;

/** The namespace is not a plain schema name. */
export class EmbeddedStoreError extends Error {
  override readonly name = "EmbeddedStoreError";
}

/**
 * What drizzle's PGlite driver and migrator call on their client: a namespace's view offers the
 * same three methods as a PGlite instance.
 */
export interface EmbeddedClient {
  query<T>(query: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>>;
  exec(query: string, options?: QueryOptions): Promise<Array<Results>>;
  transaction<T>(fn: (tx: EmbeddedClient) => Promise<T>): Promise<T>;
}

/**
 * One PGlite instance holding the databases of several services side by side (the all-in-one
 * homeserver): each service works in a namespace, a Postgres schema of its own that is its
 * `search_path`, and its copies of the runtime's schemas are renamed per namespace, so table
 * names of different services never meet. One instance costs one WASM heap and one start instead
 * of one per service.
 *
 * PGlite is a single session, so statements of all namespaces take turns (a transaction holds
 * the instance until it ends, as on a dedicated PGlite): code must never wait, inside a
 * transaction, for another namespace's statement.
 */
export class EmbeddedStore {
  readonly #pglite: PGlite;
  readonly #views = new Map<string, EmbeddedClient>();
  /** The session's `search_path` outside transactions (a transaction sets it with SET LOCAL). */
  #searchPath: string | undefined;
  /** Serialises statements and transactions of every namespace (the order PGlite keeps too). */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  /**
   * Opens (or on first use initialises) the store in `dataDir`; in memory without one.
   * `postgresqlconf` lines (`name=value`) override Postgres settings of this instance.
   */
  static async open(dataDir?: string, options: { postgresqlconf?: string[] } = {}): Promise<EmbeddedStore> {
    return new EmbeddedStore(
      await PGlite.create({
        ...(dataDir ? { dataDir } : {}),
        ...(options.postgresqlconf ? { postgresqlconf: options.postgresqlconf } : {}),
      }),
    );
  }

  /** The client of one namespace (the same object for the same name). */
  view(namespace: string): EmbeddedClient {
    if (!NAMESPACE.test(namespace)) {
      throw new EmbeddedStoreError(`${JSON.stringify(namespace)} is not a plain lower-case schema name`);
    }
    let view = this.#views.get(namespace);
    if (!view) {
      view = this.#createView(namespace);
      this.#views.set(namespace, view);
    }
    return view;
  }

  /** Closes the instance; call after every namespace's user has stopped. */
  close(): Promise<void> {
    return this.#exclusive(() => this.#pglite.close());
  }

  #createView(namespace: string): EmbeddedClient {
    const rewrite = renamer(namespace);
    // The schema must exist before it is the search path: unqualified DDL lands in it.
    const searchPath = `"${namespace}"`;
    let created = false;
    const enter = async (): Promise<void> => {
      if (!created) {
        await this.#pglite.exec(`CREATE SCHEMA IF NOT EXISTS ${searchPath}`);
        created = true;
      }
      if (this.#searchPath !== searchPath) {
        await this.#pglite.exec(`SET search_path TO ${searchPath}`);
        this.#searchPath = searchPath;
      }
    };
    const inTransaction = (tx: Transaction): EmbeddedClient => ({
      query: (query, params, options) => tx.query(rewrite(query), params, options),
      exec: (query, options) => tx.exec(rewrite(query), options),
      // drizzle nests with savepoints on the outer transaction; PGlite cannot nest.
      transaction: () => Promise.reject(new EmbeddedStoreError("nested transaction on an embedded store")),
    });
    return {
      query: (query, params, options) =>
        this.#exclusive(async () => {
          await enter();
          return this.#pglite.query(rewrite(query), params, options);
        }),
      exec: (query, options) =>
        this.#exclusive(async () => {
          await enter();
          return this.#pglite.exec(rewrite(query), options);
        }),
      transaction: (fn) =>
        this.#exclusive(async () => {
          await enter();
          return this.#pglite.transaction((tx) => fn(inTransaction(tx)));
        }),
    };
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work, work);
    this.#tail = run.catch(() => {});
    return run;
  }
}

/**
 * Rewrites the runtime's schema names in a statement to the namespace's copies, and `"public".`
 * (drizzle-kit qualifies foreign keys with it) to the namespace.
 */
function renamer(namespace: string): (query: string) => string {
  const pattern = new RegExp(`\\b(${RENAMED_SCHEMAS.join("|")})\\b|"public"\\.`, "g");
  return (query) =>
    query.replace(pattern, (match) =>
      match === '"public".' ? `"${namespace}".` : `${namespace}_${match.slice("phoenix_".length)}`,
    );
}
