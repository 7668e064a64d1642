// FetchAddPackages for a user of another domain goes to that domain's QS through the federation
// gateway's FederationProxyService (a fake one here); the answer or status comes back as is.
import { Metadata, status } from "@grpc/grpc-js";
import { randomBytes } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import { callFailure, FakeFederationProxy } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./support/harness.js";

const BETA = "beta.example";

describe("QS FetchAddPackages for another domain", () => {
  let proxy: FakeFederationProxy;
  let h: Harness;
  beforeAll(async () => {
    proxy = await FakeFederationProxy.start();
    h = await Harness.start({ config: { FEDERATION_PROXY_ADDRESS: proxy.address } });
  });
  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
  });

  it("forwards the request bytes to the user's domain and returns its AddPackages", async () => {
    proxy.calls.length = 0;
    const packages = [randomBytes(120), randomBytes(130)];
    proxy.answer = async () => queue.FetchAddPackagesResponse.encode({ addPackages: packages }).finish();
    const request = { friendshipToken: randomBytes(32), domain: BETA };
    const answer = await h.client.fetchAddPackages(request);
    expect(answer.addPackages.map((p) => new Uint8Array(p))).toEqual(packages);
    expect(proxy.calls).toEqual([
      {
        destination: BETA,
        method: "/phoenix.queue.v1.QueueService/FetchAddPackages",
        request: queue.FetchAddPackagesRequest.encode(request).finish(),
      },
    ]);
  });

  it("returns the peer's refusal unchanged", async () => {
    proxy.answer = async () => {
      throw new NotFoundError("unknown friendship token");
    };
    const error = await callFailure(
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: BETA }),
    );
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.statusMessage).toBe("unknown friendship token");
  });

  it("serves its own domain itself", async () => {
    proxy.calls.length = 0;
    const error = await callFailure(
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: "alpha.example" }),
    );
    expect(error.code).toBe(status.NOT_FOUND);
    expect(proxy.calls).toEqual([]);
  });

  it("refuses a malformed domain", async () => {
    const error = await callFailure(
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: "Beta.Example" }),
    );
    expect(error.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("QS rate limits and federation", () => {
  let proxy: FakeFederationProxy;
  let h: Harness;
  beforeAll(async () => {
    proxy = await FakeFederationProxy.start();
    h = await Harness.start({
      config: {
        FEDERATION_PROXY_ADDRESS: proxy.address,
        QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: 3,
        QS_TRUSTED_PROXIES: ["127.0.0.1", "::1"],
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
  });

  it("charges a local caller's fetches for other domains, and a peer's forwarded ones to that peer", async () => {
    proxy.answer = async () => queue.FetchAddPackagesResponse.encode({ addPackages: [] }).finish();
    // From 127.0.0.1 without an origin: the loopback caller's own budget of 3.
    for (let i = 0; i < 3; i++)
      await h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: BETA });
    const refused = await callFailure(
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: BETA }),
    );
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.statusMessage).toContain("QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER");
    // A peer homeserver's forwarded requests (about this domain) have a budget of their own.
    const forwarded = await callFailure(
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: "" }, { metadata: origin(BETA) }),
    );
    expect(forwarded.code).toBe(status.NOT_FOUND);
  });

  it("refuses to forward again a request a peer forwarded about a third domain", async () => {
    const error = await callFailure(
      h.client.fetchAddPackages(
        { friendshipToken: randomBytes(32), domain: "gamma.example" },
        { metadata: origin(BETA) },
      ),
    );
    expect(error.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("QS without a federation gateway", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("answers UNAVAILABLE naming the domain", async () => {
    const error = await callFailure(
      h.client.fetchAddPackages({ friendshipToken: randomBytes(32), domain: BETA }),
    );
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.statusMessage).toContain(BETA);
  });
});

/** Metadata of a request a peer homeserver forwarded (as the federation gateway sends it). */
function origin(domain: string): Metadata {
  const metadata = new Metadata();
  metadata.set("phoenix-origin-domain", domain);
  return metadata;
}
