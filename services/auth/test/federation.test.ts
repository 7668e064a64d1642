// Requests about other domains: forwarded through the federation gateway's FederationProxyService
// (a fake one here) with their bytes unchanged, the peer's answer or status returned as is, and
// other domains' AS credentials cached with a TTL.
import { Metadata, status } from "@grpc/grpc-js";
import {
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  expirationFrom,
  randomBytes,
  SigningKey,
} from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { errorDetail, NotFoundError, UnavailableError } from "@phoenix/runtime/errors";
import { FakeFederationProxy } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, type Harness, startAuth } from "./harness.js";

const BETA = "beta.example";
const DAY = 86_400_000;
const Service = auth.AuthServiceService;

/** A complete, self-consistent GetAsCredentials answer of `domain`. */
function credentialsOf(domain: string, rootDomain = domain): auth.GetAsCredentialsResponse {
  const now = Date.now();
  const rootKey = SigningKey.generate();
  const root = AsCredential.issue(rootKey, rootDomain, expirationFrom(now - DAY, 3650 * DAY));
  const intermediate = AsIntermediateCredential.issue(
    rootKey,
    root,
    AsIntermediateCsr.create(SigningKey.generate(), rootDomain, expirationFrom(now - DAY, 365 * DAY)),
  );
  return {
    domain,
    asCredentials: [root.bytes],
    asIntermediateCredentials: [intermediate.bytes],
    revokedFingerprints: [],
  };
}

const remoteUser = { uuid: randomBytes(16), domain: BETA };

/** One federated AS RPC: a request about beta.example and the answer the peer gives. */
interface Case {
  name: keyof typeof Service;
  request: unknown;
  response: unknown;
}

const cases: Case[] = [
  {
    name: "getUserProfile",
    request: auth.GetUserProfileRequest.fromPartial({ userId: remoteUser, keyIndex: randomBytes(16) }),
    response: auth.GetUserProfileResponse.fromPartial({ encryptedUserProfile: randomBytes(40) }),
  },
  {
    name: "checkHandleExists",
    request: auth.CheckHandleExistsRequest.fromPartial({ handleHash: randomBytes(32), domain: BETA }),
    response: auth.CheckHandleExistsResponse.fromPartial({ exists: true }),
  },
  {
    name: "getConnectionPackages",
    request: auth.GetConnectionPackagesRequest.fromPartial({ userId: remoteUser }),
    response: auth.GetConnectionPackagesResponse.fromPartial({
      packages: [
        { clientId: { user: remoteUser, clientUuid: randomBytes(16) }, connectionPackage: randomBytes(50) },
      ],
    }),
  },
  {
    name: "getHandleConnectionPackage",
    request: auth.GetHandleConnectionPackageRequest.fromPartial({
      handleHash: randomBytes(32),
      domain: BETA,
    }),
    response: auth.GetHandleConnectionPackageResponse.fromPartial({ connectionPackage: randomBytes(50) }),
  },
  {
    name: "enqueueConnectionOffer",
    request: auth.EnqueueConnectionOfferRequest.fromPartial({
      clientId: { user: remoteUser, clientUuid: randomBytes(16) },
      connectionOffer: randomBytes(64),
    }),
    response: auth.EnqueueConnectionOfferResponse.fromPartial({}),
  },
  {
    name: "enqueueHandleConnectionOffer",
    request: auth.EnqueueHandleConnectionOfferRequest.fromPartial({
      handleHash: randomBytes(32),
      domain: BETA,
      connectionOffer: randomBytes(64),
    }),
    response: auth.EnqueueHandleConnectionOfferResponse.fromPartial({}),
  },
];

type Method = {
  path: string;
  requestSerialize(value: never): Buffer;
  responseSerialize(value: never): Buffer;
};
const methodOf = (name: keyof typeof Service) => Service[name] as unknown as Method;
const encodeRequest = (c: Case) => new Uint8Array(methodOf(c.name).requestSerialize(c.request as never));
const encodeResponse = (c: Case) => new Uint8Array(methodOf(c.name).responseSerialize(c.response as never));

function invoke(
  h: Harness,
  name: keyof typeof Service,
  request: unknown,
  metadata?: Metadata,
): Promise<unknown> {
  const fn = h.as[name] as unknown as (
    request: unknown,
    options?: { metadata?: Metadata },
  ) => Promise<unknown>;
  return fn(request, metadata ? { metadata } : undefined);
}

describe("AS requests about other domains", () => {
  let proxy: FakeFederationProxy;
  let h: Harness;
  beforeAll(async () => {
    proxy = await FakeFederationProxy.start();
    h = await startAuth({ FEDERATION_PROXY_ADDRESS: proxy.address, AS_REMOTE_CREDENTIALS_TTL: "10m" });
  });
  afterAll(async () => {
    await h?.close();
    await proxy?.close();
  });

  it.each(cases)("$name goes to the peer with its bytes, and the peer's answer comes back", async (c) => {
    proxy.calls.length = 0;
    proxy.answer = async () => encodeResponse(c);
    const answer = await invoke(h, c.name, c.request);
    expect(new Uint8Array(methodOf(c.name).responseSerialize(answer as never))).toEqual(encodeResponse(c));
    expect(proxy.calls).toHaveLength(1);
    expect(proxy.calls[0]?.destination).toBe(BETA);
    expect(proxy.calls[0]?.method).toBe(methodOf(c.name).path);
    expect(proxy.calls[0]?.request).toEqual(encodeRequest(c));
  });

  it("returns the peer's refusal unchanged: code, message and details", async () => {
    proxy.answer = async () => {
      throw new NotFoundError("no such user on beta.example", {
        details: [
          errorDetail(
            common.ErrorDetail.fromPartial({ reason: common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER }),
          ),
        ],
      });
    };
    const error = await expectStatus(h.as.getConnectionPackages({ userId: remoteUser }), status.NOT_FOUND);
    expect(error.statusMessage).toBe("no such user on beta.example");
    expect(error.details).toHaveLength(1);
  });

  it("serves this domain's requests itself", async () => {
    proxy.calls.length = 0;
    const local = await h.as.checkHandleExists({ handleHash: randomBytes(32), domain: "alpha.example" });
    expect(local.exists).toBe(false);
    expect((await h.as.getAsCredentials({ domain: "" })).domain).toBe("alpha.example");
    expect(proxy.calls).toEqual([]);
  });

  it("refuses a malformed domain without asking anyone", async () => {
    proxy.calls.length = 0;
    await expectStatus(
      h.as.checkHandleExists({ handleHash: randomBytes(32), domain: "Beta.Example" }),
      status.INVALID_ARGUMENT,
    );
    expect(proxy.calls).toEqual([]);
  });
});

describe("AS remote credentials cache", () => {
  let proxy: FakeFederationProxy;
  let h: Harness;
  beforeAll(async () => {
    proxy = await FakeFederationProxy.start();
    h = await startAuth({ FEDERATION_PROXY_ADDRESS: proxy.address, AS_REMOTE_CREDENTIALS_TTL: "10m" });
  });
  afterAll(async () => {
    await h?.close();
    await proxy?.close();
  });

  const encoded = (answer: auth.GetAsCredentialsResponse) =>
    auth.GetAsCredentialsResponse.encode(answer).finish();
  const answering = (answer: auth.GetAsCredentialsResponse) => async () => encoded(answer);
  /** GetAsCredentials of `domain`, encoded (bytes fields arrive as Buffers). */
  const fetched = async (domain: string) => encoded(await h.as.getAsCredentials({ domain }));

  it("fetches once, serves from the cache, refetches after the TTL and serves a stale answer while the peer is down", async () => {
    proxy.calls.length = 0;
    const first = credentialsOf(BETA);
    proxy.answer = answering(first);
    expect(await fetched(BETA)).toEqual(encoded(first));
    expect(await fetched(BETA)).toEqual(encoded(first));
    expect(proxy.calls).toHaveLength(1);
    expect(auth.GetAsCredentialsRequest.decode(proxy.calls[0]?.request ?? new Uint8Array()).domain).toBe(
      BETA,
    );

    const rotated = credentialsOf(BETA);
    proxy.answer = answering(rotated);
    h.advance(11 * 60_000);
    expect(await fetched(BETA)).toEqual(encoded(rotated));
    expect(proxy.calls).toHaveLength(2);

    h.advance(11 * 60_000);
    proxy.answer = async () => {
      throw new UnavailableError("beta.example cannot be reached");
    };
    expect(await fetched(BETA)).toEqual(encoded(rotated));
    expect(proxy.calls).toHaveLength(3);
  });

  it("is UNAVAILABLE when the peer is down and nothing is cached", async () => {
    proxy.answer = async () => {
      throw new UnavailableError("delta.example cannot be reached");
    };
    const error = await expectStatus(h.as.getAsCredentials({ domain: "delta.example" }), status.UNAVAILABLE);
    expect(error.statusMessage).toContain("delta.example");
  });

  it("refuses and never caches an answer for another domain or with a broken chain", async () => {
    const gamma = "gamma.example";
    const good = credentialsOf(gamma);
    const otherIntermediate = credentialsOf(gamma).asIntermediateCredentials;
    const bad: [string, auth.GetAsCredentialsResponse][] = [
      ["answer for another domain", credentialsOf(BETA)],
      ["root of another domain", credentialsOf(gamma, BETA)],
      ["no root", { ...good, asCredentials: [] }],
      ["intermediate of another root", { ...good, asIntermediateCredentials: otherIntermediate }],
      ["garbage root", { ...good, asCredentials: [randomBytes(80)] }],
    ];
    for (const [what, answer] of bad) {
      proxy.calls.length = 0;
      proxy.answer = answering(answer);
      const error = await expectStatus(h.as.getAsCredentials({ domain: gamma }), status.UNAVAILABLE);
      expect(error.statusMessage, what).toContain(gamma);
      // Nothing was cached: the next request asks again.
      await expectStatus(h.as.getAsCredentials({ domain: gamma }), status.UNAVAILABLE);
      expect(proxy.calls, what).toHaveLength(2);
    }
    proxy.answer = answering(good);
    expect(await fetched(gamma)).toEqual(encoded(good));
  });

  it("does not serve a stale answer when the peer refuses instead of being down", async () => {
    const epsilon = "epsilon.example";
    proxy.answer = answering(credentialsOf(epsilon));
    await h.as.getAsCredentials({ domain: epsilon });
    h.advance(11 * 60_000);
    proxy.answer = async () => {
      throw new NotFoundError("gone");
    };
    await expectStatus(h.as.getAsCredentials({ domain: epsilon }), status.NOT_FOUND);
  });
});

describe("AS without a federation gateway", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ...cases.map((c) => [c.name, c.request] as const),
    ["getAsCredentials", { domain: BETA }] as const,
  ])("%s about another domain is UNAVAILABLE naming it", async (name, request) => {
    const error = await expectStatus(invoke(h, name, request), status.UNAVAILABLE);
    expect(error.statusMessage).toContain(BETA);
  });
});

describe("AS rate limits and federation", () => {
  let proxy: FakeFederationProxy;
  let h: Harness;
  beforeAll(async () => {
    proxy = await FakeFederationProxy.start();
    h = await startAuth({
      FEDERATION_PROXY_ADDRESS: proxy.address,
      AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "2",
      AS_TRUSTED_PROXIES: "127.0.0.1,::1",
    });
  });
  afterAll(async () => {
    await h?.close();
    await proxy?.close();
  });

  const check = (domain: string, origin?: string) => {
    const metadata = new Metadata();
    if (origin) metadata.set("phoenix-origin-domain", origin);
    return invoke(h, "checkHandleExists", { handleHash: randomBytes(32), domain }, metadata);
  };

  it("charges a local client's requests for other domains before they leave", async () => {
    proxy.calls.length = 0;
    proxy.answer = async () => auth.CheckHandleExistsResponse.encode({ exists: false }).finish();
    await check(BETA);
    await check(BETA);
    await expectStatus(check(BETA), status.RESOURCE_EXHAUSTED);
    expect(proxy.calls).toHaveLength(2);
  });

  it("charges requests a peer homeserver forwarded to that domain", async () => {
    await check("", "gamma.example");
    await check("", "gamma.example");
    const refused = await expectStatus(check("", "gamma.example"), status.RESOURCE_EXHAUSTED);
    expect(refused.statusMessage).toContain("AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE");
    // Another peer domain has its own budget.
    await check("", "delta.example");
  });
});
