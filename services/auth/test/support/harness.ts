import {
  ClientCredentialCsr,
  type ClientId,
  encryptUserProfile,
  expirationFrom,
  generateUserProfileKey,
  HpkeKeyPair,
  randomBytes,
  SigningKey,
} from "@phoenix/crypto";
import { auth, type common, type MessageEncoder, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { type Bus, createEmbeddedBus } from "@phoenix/runtime/bus";
import type { Env } from "@phoenix/runtime/config";
import type { Database } from "@phoenix/runtime/db";
import {
  type ClientMethodFor,
  createChannel,
  createServiceClient,
  GrpcCallError,
  type ServiceClient,
} from "@phoenix/runtime/grpc";
import { runModule } from "@phoenix/runtime/module";
import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import type { SQL } from "drizzle-orm";
import { expect } from "vitest";
import { authModuleWith } from "../../src/module.js";
import { type AuthService, authMigrationsFolder } from "../../src/service.js";

export const DOMAIN = "alpha.example";
const DAY = 24 * 3_600_000;

/** An AS on a fresh test database, served on 127.0.0.1:0, with a client and a movable clock. */
export interface Harness {
  readonly as: ServiceClient<typeof auth.AuthServiceService>;
  /** `127.0.0.1:port` of the gRPC server. */
  readonly address: string;
  readonly db: TestDatabase;
  readonly service: AuthService;
  /** Moves the service clock forward. */
  advance(ms: number): void;
  now(): Date;
  close(): Promise<void>;
}

/**
 * The test defaults: every test talks from 127.0.0.1, so the per-caller rate limits are raised
 * out of the way (test/rate-limits.test.ts sets its own).
 */
const TEST_ENV: Env = {
  AS_DOMAIN: DOMAIN,
  // Required, as in production: a fresh key per test process (restarts in one file share it).
  AS_KEY_ENCRYPTION_KEY: Buffer.from(randomBytes(32)).toString("hex"),
  GRPC_PORT: "0",
  METRICS_PORT: "0",
  LOG_LEVEL: "silent",
  AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_PACKAGES_PER_MINUTE: "1000000",
  AS_TARGET_RATE_PACKAGES_PER_HOUR: "1000000",
  AS_CALLER_RATE_PROFILE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_ENQUEUE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE: "1000000",
  AS_SOURCE_RATE_REGISTER_PER_HOUR: "1000000",
};

/**
 * Starts the AS with `env` overrides (AS_DOMAIN is alpha.example), on a fresh test database or on
 * `options.database` (a restart: the harness then leaves that database open on close).
 */
export async function startAuth(env: Env = {}, options: { database?: TestDatabase } = {}): Promise<Harness> {
  const ownsDatabase = options.database === undefined;
  const db = options.database ?? (await createTestDatabase({ migrationsFolder: authMigrationsFolder }));
  let bus: Bus | undefined;
  let offset = 0;
  const now = () => new Date(Date.now() + offset);
  try {
    bus = await createEmbeddedBus({ db: db.db });
    const busRef = bus;
    const running = await runModule(authModuleWith({ now: () => Date.now() + offset }), {
      env: { ...TEST_ENV, ...env },
      signals: false,
      exit: false,
      resources: { database: db, bus: busRef },
    });
    const address = `127.0.0.1:${running.grpcPort}`;
    const channel = createChannel(address);
    const as = createServiceClient(auth.AuthServiceService, channel, { defaultDeadlineMs: 20_000 });
    return {
      as,
      address,
      db,
      service: running.instance.service,
      advance(ms) {
        offset += ms;
      },
      now,
      async close() {
        channel.close();
        // Stops the service (expiry job, router) after the gRPC server drained.
        await running.process.shutdown("test done");
        await busRef.close();
        if (ownsDatabase) await db.close();
      },
    };
  } catch (error) {
    await bus?.close();
    if (ownsDatabase) await db.close();
    throw error;
  }
}

/** Runs a query returning one number (row counts). */
export async function queryNumber(db: Database, query: SQL): Promise<number> {
  const result = (await db.execute(query)) as unknown as { rows: Record<string, unknown>[] };
  return Number(Object.values(result.rows[0] ?? {})[0]);
}

/** Expects `promise` to fail with gRPC status `code`; returns the error. */
export async function expectStatus(promise: Promise<unknown>, code: number): Promise<GrpcCallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "the call should have failed").toBeInstanceOf(GrpcCallError);
  const callError = error as GrpcCallError;
  expect({ code: callError.code, message: callError.statusMessage }).toMatchObject({ code });
  return callError;
}

/** A device of a test user: its keys and ids. */
export interface TestClient {
  clientId: ClientId;
  wireId: common.ClientId;
  key: SigningKey;
  queueKey: HpkeKeyPair;
  credential: Uint8Array;
  profileKey: Uint8Array;
}

export function wireClientId(id: ClientId): common.ClientId {
  return { user: { uuid: id.userId.uuid, domain: id.userId.domain }, clientUuid: id.clientUuid };
}

/** A new client id (and user id unless given) with fresh keys, not yet registered. */
export function newClient(
  userUuid: Uint8Array = randomBytes(16),
  domain = DOMAIN,
): Omit<TestClient, "credential"> {
  const clientId = { clientUuid: randomBytes(16), userId: { uuid: userUuid, domain } };
  return {
    clientId,
    wireId: wireClientId(clientId),
    key: SigningKey.generate(),
    queueKey: HpkeKeyPair.generate(),
    profileKey: generateUserProfileKey(),
  };
}

/** A CSR of `client` valid for 30 days from `now`. */
export function csrOf(client: Pick<TestClient, "key" | "clientId">, now: Date): Uint8Array {
  return ClientCredentialCsr.create(
    client.key,
    client.clientId,
    expirationFrom(now.getTime() - 1000, 30 * DAY),
  ).bytes;
}

/** Signs a `…Tbs` with the given key, sender and time. */
export function sign<T extends { header: common.RequestHeader | undefined }>(
  type: MessageEncoder<T>,
  method: { path: string },
  body: Omit<T, "header">,
  key: SigningKey,
  sender: common.RequestHeader["sender"],
  now: Date,
): Promise<common.Signed> {
  const tbs = { ...body, header: requestHeader(rpcLabel(method), sender, now) } as T;
  return signTbs(type, tbs, (label, bytes) => key.sign(label, bytes));
}

/** Signs as a registered client. */
export function signAs<T extends { header: common.RequestHeader | undefined }>(
  client: Pick<TestClient, "key" | "wireId">,
  type: MessageEncoder<T>,
  method: { path: string },
  body: Omit<T, "header">,
  now: Date,
): Promise<common.Signed> {
  return sign(type, method, body, client.key, { $case: "client", value: client.wireId }, now);
}

export const S = auth.AuthServiceService;

/** The RegisterUser request for a new client. */
export async function registerRequest(
  client: Omit<TestClient, "credential">,
  now: Date,
  extra: Partial<Omit<auth.RegisterUserTbs, "header">> = {},
): Promise<auth.RegisterUserRequest> {
  const profile = encryptUserProfile(
    client.profileKey,
    client.clientId.userId,
    new TextEncoder().encode("Alice"),
  ).encrypted;
  const signed = await signAs(
    client,
    auth.RegisterUserTbs,
    S.registerUser,
    {
      clientCsr: csrOf(client, now),
      encryptedUserProfile: profile,
      connectionQueueEncryptionKey: client.queueKey.publicKey.bytes,
      inviteCode: "",
      ...extra,
    },
    now,
  );
  return { signed };
}

/** Registers a new user with one client. */
export async function registerUser(
  h: Harness,
  extra: Partial<Omit<auth.RegisterUserTbs, "header">> = {},
): Promise<TestClient> {
  const client = newClient();
  const response = await h.as.registerUser(await registerRequest(client, h.now(), extra));
  return { ...client, credential: response.clientCredential };
}

/** Adds a client to the user of `existing`. */
export async function addClient(h: Harness, existing: TestClient): Promise<TestClient> {
  const client = newClient(existing.clientId.userId.uuid);
  const signed = await signAs(
    existing,
    auth.AddClientTbs,
    S.addClient,
    { clientCsr: csrOf(client, h.now()), connectionQueueEncryptionKey: client.queueKey.publicKey.bytes },
    h.now(),
  );
  const response = await h.as.addClient({ signed });
  return { ...client, profileKey: existing.profileKey, credential: response.clientCredential };
}

export type { ClientMethodFor };
