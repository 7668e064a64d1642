// What every variant of the homeserver must answer through its edge gateway.
import { expect } from "vitest";

/** What a restarted homeserver must still hand out. */
export interface PublishedKeys {
  asCredentials: unknown;
  queueKeys: unknown;
}

/**
 * Health, readiness and 404 of the gateway, and one real answer from each of AS
 * (GetAsCredentials), QS (GetQueueConfigEncryptionKey) and DS (RequestGroupId).
 */
export async function expectServing(url: string, domain: string): Promise<PublishedKeys> {
  expect((await call(url, "/healthz")).status).toBe(200);
  const ready = await call(url, "/readyz");
  expect(ready.status).toBe(200);
  expect(ready.json.upstreams).toEqual({ auth: "SERVING", delivery: "SERVING", queue: "SERVING" });

  const unknown = await call(url, "/v1/no/such/route");
  expect(unknown.status).toBe(404);
  expect(unknown.json.code).toBe(5); // google.rpc.Status NOT_FOUND

  const credentials = await call(url, "/v1/as/credentials");
  expect(credentials.status).toBe(200);
  expect(credentials.json.domain).toBe(domain);
  expect(credentials.json.asCredentials).toHaveLength(1);
  expect(credentials.json.asIntermediateCredentials).toHaveLength(1);

  const keys = await call(url, "/v1/qs/keys/queue-config");
  expect(keys.status).toBe(200);
  const list = keys.json.keys as { current?: boolean; publicKey?: string }[];
  expect(list.filter((k) => k.current)).toHaveLength(1);
  expect(list[0]?.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/); // 32-byte X25519 key

  const reserved = await call(url, "/v1/ds/groups/reserve", {});
  expect(reserved.status).toBe(200);
  expect((reserved.json.groupId as { domain?: string }).domain).toBe(domain);
  expect(Date.parse(String(reserved.json.expiresAt))).toBeGreaterThan(Date.now());

  return { asCredentials: credentials.json.asCredentials, queueKeys: list };
}

export async function fetchAsCredentials(url: string): Promise<unknown> {
  const response = await call(url, "/v1/as/credentials");
  expect(response.status).toBe(200);
  return response.json.asCredentials;
}

export async function fetchQueueKeys(url: string): Promise<unknown> {
  const response = await call(url, "/v1/qs/keys/queue-config");
  expect(response.status).toBe(200);
  return response.json.keys;
}

/** GET (or POST `body` as JSON) through the edge gateway. */
async function call(
  url: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
