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
import { expectStatus, type Harness, startAuth } from "./support/harness.js";

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

/**
 * An AS whose federation gateway is a {@link FakeFederationProxy}, both started before the
 * enclosing describe's tests and closed after them; `env` adds to the AS's configuration.
 */
function authBehindFakeGateway(env: Record<string, string>): { proxy: FakeFederationProxy; h: Harness } {
  const started = {} as { proxy: FakeFederationProxy; h: Harness };
  beforeAll(async () => {
    started.proxy = await FakeFederationProxy.start();
    started.h = await startAuth({ FEDERATION_PROXY_ADDRESS: started.proxy.address, ...env });
  });
  afterAll(async () => {
    await started.h?.close();
    await started.proxy?.close();
  });
  return started;
}

describe("AS requests about other domains", () => {
  const setup = authBehindFakeGateway({ AS_REMOTE_CREDENTIALS_TTL: "10m" });

  it.each(cases)("$name goes to the peer with its bytes, and the peer's answer comes back", async (c) => {
    setup.proxy.calls.length = 0;
    setup.proxy.answer = async () => encodeResponse(c);
    const answer = await invoke(setup.h, c.name, c.request);
    expect(new Uint8Array(methodOf(c.name).responseSerialize(answer as never))).toEqual(encodeResponse(c));
    expect(setup.proxy.calls).toHaveLength(1);
    expect(setup.proxy.calls[0]?.destination).toBe(BETA);
    expect(setup.proxy.calls[0]?.method).toBe(methodOf(c.name).path);
    expect(setup.proxy.calls[0]?.request).toEqual(encodeRequest(c));
  });

  it("returns the peer's refusal unchanged: code, message and details", async () => {
    setup.proxy.answer = async () => {
      throw new NotFoundError("no such user on beta.example", {
        details: [
          errorDetail(
            common.ErrorDetail.fromPartial({ reason: common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER }),
          ),
        ],
      });
    };
    const error = await expectStatus(
      setup.h.as.getConnectionPackages({ userId: remoteUser }),
      status.NOT_FOUND,
    );
    expect(error.statusMessage).toBe("no such user on beta.example");
    expect(error.details).toHaveLength(1);
  });

  it("serves this domain's requests itself", async () => {
    setup.proxy.calls.length = 0;
    const local = await setup.h.as.checkHandleExists({
      handleHash: randomBytes(32),
      domain: "alpha.example",
    });
    expect(local.exists).toBe(false);
    expect((await setup.h.as.getAsCredentials({ domain: "" })).domain).toBe("alpha.example");
    expect(setup.proxy.calls).toEqual([]);
  });

  it("refuses a malformed domain without asking anyone", async () => {
    setup.proxy.calls.length = 0;
    await expectStatus(
      setup.h.as.checkHandleExists({ handleHash: randomBytes(32), domain: "Beta.Example" }),
      status.INVALID_ARGUMENT,
    );
    expect(setup.proxy.calls).toEqual([]);
  });
});

describe("AS remote credentials cache", () => {
  const setup = authBehindFakeGateway({ AS_REMOTE_CREDENTIALS_TTL: "10m" });

  const encoded = (answer: auth.GetAsCredentialsResponse) =>
    auth.GetAsCredentialsResponse.encode(answer).finish();
  const answering = (answer: auth.GetAsCredentialsResponse) => async () => encoded(answer);
  /** GetAsCredentials of `domain`, encoded (bytes fields arrive as Buffers). */
  const fetched = async (domain: string) => encoded(await setup.h.as.getAsCredentials({ domain }));

  it("fetches once, serves from the cache, refetches after the TTL and serves a stale answer while the peer is down", async () => {
    setup.proxy.calls.length = 0;
    const first = credentialsOf(BETA);
    setup.proxy.answer = answering(first);
    expect(await fetched(BETA)).toEqual(encoded(first));
    expect(await fetched(BETA)).toEqual(encoded(first));
    expect(setup.proxy.calls).toHaveLength(1);
    expect(
      auth.GetAsCredentialsRequest.decode(setup.proxy.calls[0]?.request ?? new Uint8Array()).domain,
    ).toBe(BETA);

    const rotated = credentialsOf(BETA);
    setup.proxy.answer = answering(rotated);
    setup.h.advance(11 * 60_000);
    expect(await fetched(BETA)).toEqual(encoded(rotated));
    expect(setup.proxy.calls).toHaveLength(2);

    setup.h.advance(11 * 60_000);
    setup.proxy.answer = async () => {
      throw new UnavailableError("beta.example cannot be reached");
    };
    expect(await fetched(BETA)).toEqual(encoded(rotated));
    expect(setup.proxy.calls).toHaveLength(3);
  });

  it("is UNAVAILABLE when the peer is down and nothing is cached", async () => {
    setup.proxy.answer = async () => {
      throw new UnavailableError("delta.example cannot be reached");
    };
    const error = await expectStatus(
      setup.h.as.getAsCredentials({ domain: "delta.example" }),
      status.UNAVAILABLE,
    );
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
      setup.proxy.calls.length = 0;
      setup.proxy.answer = answering(answer);
      const error = await expectStatus(setup.h.as.getAsCredentials({ domain: gamma }), status.UNAVAILABLE);
      expect(error.statusMessage, what).toContain(gamma);
      // Nothing was cached: the next request asks again.
      await expectStatus(setup.h.as.getAsCredentials({ domain: gamma }), status.UNAVAILABLE);
      expect(setup.proxy.calls, what).toHaveLength(2);
    }
    setup.proxy.answer = answering(good);
    expect(await fetched(gamma)).toEqual(encoded(good));
  });

  it("does not serve a stale answer when the peer refuses instead of being down", async () => {
    const epsilon = "epsilon.example";
    setup.proxy.answer = answering(credentialsOf(epsilon));
    await setup.h.as.getAsCredentials({ domain: epsilon });
    setup.h.advance(11 * 60_000);
    setup.proxy.answer = async () => {
      throw new NotFoundError("gone");
    };
    await expectStatus(setup.h.as.getAsCredentials({ domain: epsilon }), status.NOT_FOUND);
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
  const setup = authBehindFakeGateway({
    AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "2",
    AS_TRUSTED_PROXIES: "127.0.0.1,::1",
  });

  const check = (domain: string, origin?: string) => {
    const metadata = new Metadata();
    if (origin) metadata.set("phoenix-origin-domain", origin);
    return invoke(setup.h, "checkHandleExists", { handleHash: randomBytes(32), domain }, metadata);
  };

  it("charges a local client's requests for other domains before they leave", async () => {
    setup.proxy.calls.length = 0;
    setup.proxy.answer = async () => auth.CheckHandleExistsResponse.encode({ exists: false }).finish();
    await check(BETA);
    await check(BETA);
    await expectStatus(check(BETA), status.RESOURCE_EXHAUSTED);
    expect(setup.proxy.calls).toHaveLength(2);
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
