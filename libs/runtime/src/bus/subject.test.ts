import { describe, expect, it } from "vitest";
import { InvalidSubjectError } from "./errors.js";
import { assertPattern, assertSubject, matchesSubject, patternsOverlap } from "./subject.js";

describe("NATS subject patterns", () => {
  it("matches * against exactly one token and > against one or more trailing tokens", () => {
    expect(matchesSubject("qs.queue.*", "qs.queue.abc")).toBe(true);
    expect(matchesSubject("qs.queue.*", "qs.queue.abc.def")).toBe(false);
    expect(matchesSubject("qs.queue.*", "qs.queue")).toBe(false);
    expect(matchesSubject("qs.>", "qs.queue.abc.def")).toBe(true);
    expect(matchesSubject("qs.>", "qs")).toBe(false);
    expect(matchesSubject("*.queue.>", "qs.queue.x")).toBe(true);
    expect(matchesSubject("qs.queue.x", "qs.queue.x")).toBe(true);
    expect(matchesSubject("qs.queue.x", "qs.queue.y")).toBe(false);
    expect(matchesSubject(">", "anything.at.all")).toBe(true);
  });

  it("finds overlapping stream subjects", () => {
    expect(patternsOverlap("fanout.>", "fanout.a.*")).toBe(true);
    expect(patternsOverlap("fanout.*", "fanout.a")).toBe(true);
    expect(patternsOverlap("fanout.*", "fanout.a.b")).toBe(false);
    expect(patternsOverlap("fanout.>", "fanout")).toBe(false);
    expect(patternsOverlap("fanout.>", "federation.>")).toBe(false);
    expect(patternsOverlap("*.x", "a.*")).toBe(true);
    expect(patternsOverlap("a.b", "a.b")).toBe(true);
  });

  it("refuses malformed subjects and wildcards where a concrete subject is needed", () => {
    for (const bad of ["", "a..b", ".a", "a.", "a b", "a.>.b", "a.b*", "a.>x"]) {
      expect(() => assertPattern(bad), bad).toThrow(InvalidSubjectError);
    }
    expect(() => assertSubject("a.*")).toThrow(InvalidSubjectError);
    expect(() => assertSubject("a.>")).toThrow(InvalidSubjectError);
    expect(() => assertSubject("qs.queue.0f3a")).not.toThrow();
    expect(() => assertPattern("qs.*.>")).not.toThrow();
  });
});
