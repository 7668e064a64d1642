import { describe, expect, it } from "vitest";
import { FederationConfigError } from "./errors.js";
import { domainOfToken, isDomain, parseStaticPeers, peerToken } from "./peers.js";

describe("static peer map", () => {
  it("parses domain=host:port entries", () => {
    const map = parseStaticPeers(["b.test=127.0.0.1:7001", "c.example.org=[::1]:443"]);
    expect(map.get("b.test")).toEqual({ host: "127.0.0.1", port: 7001 });
    expect(map.get("c.example.org")).toEqual({ host: "[::1]", port: 443 });
  });

  it("names the bad entry", () => {
    expect(() => parseStaticPeers(["b.test"])).toThrow(FederationConfigError);
    expect(() => parseStaticPeers(["B.TEST=1.2.3.4:1"])).toThrow(/B.TEST/);
    expect(() => parseStaticPeers(["b.test=host:99999"])).toThrow(/host:99999/);
    expect(() => parseStaticPeers(["b.test=h:1", "b.test=h:2"])).toThrow(/twice/);
  });
});

describe("domains and subject tokens", () => {
  it("accepts lower-case FQDNs only", () => {
    expect(isDomain("a.test")).toBe(true);
    expect(isDomain("A.test")).toBe(false);
    expect(isDomain("a..test")).toBe(false);
    expect(isDomain("a.test.")).toBe(false);
    expect(isDomain("a_b.test")).toBe(false);
  });

  it("maps a domain to its subject token and back", () => {
    expect(peerToken("chat.b.test")).toBe("chat_b_test");
    expect(domainOfToken("chat_b_test")).toBe("chat.b.test");
  });
});
