import { describe, expect, it } from "vitest";
import { FederationConfigError } from "./errors.js";
import { parseStaticPeers } from "./peers.js";

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

  it("holds peer domains to the domain rule of ids", () => {
    const longLabel = `${"a".repeat(64)}.test`;
    for (const bad of ["a..b", "-a.b", "a-.b", "a.test.", "a_b.test", "A.test", longLabel]) {
      expect(() => parseStaticPeers([`${bad}=127.0.0.1:7001`]), bad).toThrow(FederationConfigError);
    }
    const map = parseStaticPeers([
      "example.org=h:1",
      "localhost=h:2",
      "a-b.c=h:3",
      `${"a".repeat(63)}.test=h:4`,
    ]);
    expect([...map.keys()]).toEqual(["example.org", "localhost", "a-b.c", `${"a".repeat(63)}.test`]);
  });
});
