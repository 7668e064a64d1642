import { describe, expect, it } from "vitest";
import { isRefusedAddress, WebhookAddressPolicy, WebhookAllowlistError } from "./webhook-address.js";

describe("isRefusedAddress", () => {
  it("refuses loopback, private, CGNAT, link-local, metadata, multicast, unspecified and their IPv6 forms", () => {
    for (const address of [
      "127.0.0.1",
      "127.255.0.9",
      "10.0.0.1",
      "172.16.5.4",
      "172.31.255.255",
      "192.168.1.1",
      "100.64.0.1",
      "169.254.169.254",
      "0.0.0.0",
      "224.0.0.251",
      "255.255.255.255",
      "::",
      "::1",
      "fd00:ec2::254",
      "fc00::1",
      "fe80::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::ffff:a9fe:a9fe",
      "64:ff9b::169.254.169.254",
      "2002:c0a8:0101::1",
      "[::1]",
      "not-an-address",
    ]) {
      expect(isRefusedAddress(address), address).toBe(true);
    }
  });

  it("accepts public unicast addresses", () => {
    for (const address of [
      "93.184.216.34",
      "8.8.8.8",
      "172.32.0.1",
      "2606:4700:4700::1111",
      "::ffff:8.8.8.8",
    ]) {
      expect(isRefusedAddress(address), address).toBe(false);
    }
  });
});

describe("WebhookAddressPolicy", () => {
  it("lets the operator allowlist host names and CIDR blocks", () => {
    const policy = new WebhookAddressPolicy(["push.internal", "10.20.0.0/16", "::1"]);
    expect(policy.allowsAddress("push.internal", "10.1.1.1")).toBe(true);
    expect(policy.allowsAddress("other.example", "10.20.3.4")).toBe(true);
    expect(policy.allowsAddress("other.example", "::ffff:10.20.3.4")).toBe(true);
    expect(policy.allowsAddress("other.example", "10.21.0.1")).toBe(false);
    expect(policy.allowsAddress("other.example", "::1")).toBe(true);
    expect(() => new WebhookAddressPolicy(["bad host!"])).toThrow(WebhookAllowlistError);
    expect(() => new WebhookAddressPolicy(["10.0.0.0/99"])).toThrow(WebhookAllowlistError);
  });

  it("checks what it can without DNS: IP literals and loopback names", () => {
    const policy = new WebhookAddressPolicy();
    const privateAddress = "its address is private, loopback or reserved";
    expect(policy.refusalWithoutDns(new URL("https://127.0.0.1/x"))).toBe(privateAddress);
    expect(policy.refusalWithoutDns(new URL("https://[::ffff:169.254.169.254]/x"))).toBe(privateAddress);
    expect(policy.refusalWithoutDns(new URL("https://LOCALHOST./x"))).toBe("it names the loopback host");
    expect(policy.refusalWithoutDns(new URL("https://api.localhost/x"))).toBe("it names the loopback host");
    expect(policy.refusalWithoutDns(new URL("https://push.example/x"))).toBeUndefined();
    expect(policy.refusalWithoutDns(new URL("https://93.184.216.34/x"))).toBeUndefined();
  });
});
