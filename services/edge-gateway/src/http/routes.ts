import type { DescField, DescMessage, Registry } from "@bufbuild/protobuf";
import type { RpcInfo } from "@phoenix/proto";
import { messageDesc, type UpstreamName, upstreamOf } from "../contracts.js";
import { compilePathTemplate, type PathTemplate } from "./path-template.js";

/** One REST route: an RPC's `google.api.http` binding. */
export interface RestRoute {
  readonly rpc: RpcInfo;
  readonly upstream: UpstreamName;
  /** Upper-case HTTP method. */
  readonly httpMethod: string;
  readonly template: PathTemplate;
  /** `*` (whole body is the request), a request field name, or "" (no body: query parameters). */
  readonly body: string;
  /** Response field sent instead of the whole response, or "". */
  readonly responseBody: string;
  readonly requestDesc: DescMessage;
  readonly responseDesc: DescMessage;
  /** Label for metrics and logs: the template, e.g. `POST /v1/as/users`. */
  readonly label: string;
}

/** An RPC's http rule names something the contracts do not have. */
export class RouteDefinitionError extends Error {
  override readonly name = "RouteDefinitionError";
}

/** Builds the REST routes of every unary RPC with an http rule (and its additional bindings). */
export function buildRestRoutes(rpcs: readonly RpcInfo[], registry?: Registry): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const rpc of rpcs) {
    const upstream = upstreamOf(rpc.service);
    if (!rpc.http || !upstream || rpc.clientStreaming || rpc.serverStreaming) continue;
    const requestDesc = messageDesc(rpc.requestType, registry);
    const responseDesc = messageDesc(rpc.responseType, registry);
    for (const rule of [rpc.http, ...rpc.http.additionalBindings]) {
      const pattern = rule.pattern;
      if (!pattern) continue;
      let httpMethod: string;
      let path: string;
      if (pattern.$case === "custom") {
        httpMethod = pattern.value.kind.toUpperCase();
        path = pattern.value.path;
      } else {
        httpMethod = pattern.$case.toUpperCase();
        path = pattern.value;
      }
      const template = compilePathTemplate(path);
      for (const variable of template.variables) checkFieldPath(requestDesc, variable.fieldPath, rpc);
      if (rule.body !== "" && rule.body !== "*") checkFieldPath(requestDesc, [rule.body], rpc);
      if (rule.responseBody !== "") checkFieldPath(responseDesc, [rule.responseBody], rpc);
      routes.push({
        rpc,
        upstream,
        httpMethod,
        template,
        body: rule.body,
        responseBody: rule.responseBody,
        requestDesc,
        responseDesc,
        label: `${httpMethod} ${path}`,
      });
    }
  }
  // More literal segments first, so `/v1/x/list` wins over `/v1/x/{id}`.
  return routes.sort((a, b) => b.template.literalCount - a.template.literalCount);
}

function checkFieldPath(desc: DescMessage, path: readonly string[], rpc: RpcInfo): void {
  let current: DescMessage | undefined = desc;
  for (const name of path) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name);
    if (!field)
      throw new RouteDefinitionError(`${rpc.path}: http rule names unknown field ${path.join(".")}`);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
}

/** What a request line resolves to. */
export type RouteMatch =
  | { kind: "route"; route: RestRoute; variables: Map<string, string> }
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "not-found" };

/** Finds the route of a method and raw path; a known path with another method is 405. */
export function matchRoute(routes: readonly RestRoute[], method: string, path: string): RouteMatch {
  const allow = new Set<string>();
  for (const route of routes) {
    const variables = route.template.match(path);
    if (!variables) continue;
    if (route.httpMethod === method) return { kind: "route", route, variables };
    allow.add(route.httpMethod);
  }
  return allow.size > 0 ? { kind: "method-not-allowed", allow: [...allow].sort() } : { kind: "not-found" };
}
