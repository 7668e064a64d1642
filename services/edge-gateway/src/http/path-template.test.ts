import { describe, expect, it } from "vitest";
import { compilePathTemplate, PathTemplateError } from "./path-template.js";

describe("google.api.http path templates", () => {
  it("matches literals exactly", () => {
    const t = compilePathTemplate("/v1/as/users");
    expect(t.match("/v1/as/users")).toEqual(new Map());
    expect(t.match("/v1/as/users/x")).toBeUndefined();
    expect(t.match("/v1/as/user")).toBeUndefined();
  });

  it("binds single-segment variables, percent-decoded", () => {
    const t = compilePathTemplate("/v1/groups/{group_id.group_uuid}/members/{leaf}");
    expect(t.match("/v1/groups/a%20b/members/3")).toEqual(
      new Map([
        ["group_id.group_uuid", "a b"],
        ["leaf", "3"],
      ]),
    );
    expect(t.match("/v1/groups/a/b/members/3")).toBeUndefined();
    expect(t.openApiPath).toBe("/v1/groups/{group_id.group_uuid}/members/{leaf}");
  });

  it("binds multi-segment variables and keeps %2F encoded", () => {
    const t = compilePathTemplate("/v1/{name=domains/*/users/**}:get");
    expect(t.match("/v1/domains/x/users/a/b%2Fc:get")?.get("name")).toBe("domains/x/users/a/b%2Fc");
    expect(t.match("/v1/domains/x/users/a")).toBeUndefined();
  });

  it("refuses malformed templates", () => {
    for (const bad of ["v1/x", "/v1//x", "/v1/{x", "/v1/{1x}", "/v1/a b"]) {
      expect(() => compilePathTemplate(bad), bad).toThrow(PathTemplateError);
    }
  });
});
