import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { clientOrigin } from "./client-origin.js";

function request(remoteAddress: string | undefined, forwardedFor?: string): IncomingMessage {
  return {
    socket: { remoteAddress },
    headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
  } as unknown as IncomingMessage;
}

describe("clientOrigin", () => {
  it("without trustProxy, is the TCP peer and discards a client-written X-Forwarded-For", () => {
    expect(clientOrigin(request("198.51.100.4", "203.0.113.9"), false)).toEqual({
      address: "198.51.100.4",
      forwardedFor: "198.51.100.4",
    });
  });

  it("with trustProxy, takes the proxy's (rightmost) hop and appends the peer to the chain", () => {
    // The client wrote 203.0.113.9; the proxy at 10.0.0.2 appended the address it saw.
    expect(clientOrigin(request("10.0.0.2", "203.0.113.9, 198.51.100.4"), true)).toEqual({
      address: "198.51.100.4",
      forwardedFor: "203.0.113.9, 198.51.100.4, 10.0.0.2",
    });
    expect(clientOrigin(request("10.0.0.2"), true)).toEqual({
      address: "10.0.0.2",
      forwardedFor: "10.0.0.2",
    });
  });

  it("unwraps IPv4-mapped IPv6 peers and keeps IPv6 peers as they are", () => {
    expect(clientOrigin(request("::ffff:192.0.2.7"), false).address).toBe("192.0.2.7");
    expect(clientOrigin(request("2001:db8::17"), false).forwardedFor).toBe("2001:db8::17");
  });

  it("bounds a long incoming chain by dropping its oldest (leftmost) hops", () => {
    const hops = Array.from({ length: 40 }, (_, i) => `192.0.2.${i}`);
    const { address, forwardedFor } = clientOrigin(request("10.0.0.2", hops.join(",")), true);
    expect(address).toBe("192.0.2.39");
    expect(forwardedFor).toBe([...hops.slice(-8), "10.0.0.2"].join(", "));
    const huge = clientOrigin(request("10.0.0.2", `${"x".repeat(5000)}, 192.0.2.1`), true);
    expect(huge.forwardedFor).toBe("192.0.2.1, 10.0.0.2");
  });

  it("does not take an over-long hop as the rate-limit key", () => {
    expect(clientOrigin(request("10.0.0.2", "y".repeat(100)), true).address).toBe("10.0.0.2");
  });
});
