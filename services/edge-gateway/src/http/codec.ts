import {
  type DescField,
  type DescMessage,
  fromBinary,
  fromJson,
  fromJsonString,
  type JsonObject,
  type JsonValue,
  type Registry,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { encodeRichStatus, type RichStatus } from "@phoenix/runtime/errors";
import { contractRegistry, messageDesc } from "../contracts.js";
import type { RestRoute } from "./routes.js";

/** The two body encodings the gateway speaks. */
export type BodyEncoding = "json" | "proto";

export const JSON_TYPE = "application/json";
export const PROTO_TYPE = "application/x-protobuf";
const PROTO_TYPES = new Set([PROTO_TYPE, "application/protobuf", "application/vnd.google.protobuf"]);

/** The request cannot become the RPC's request message (answered 400 INVALID_ARGUMENT). */
export class MalformedRequestError extends Error {
  override readonly name = "MalformedRequestError";
}

/** The request's Content-Type is neither JSON nor protobuf (answered 415). */
export class UnsupportedMediaTypeError extends Error {
  override readonly name = "UnsupportedMediaTypeError";
}

/** The body encoding named by a Content-Type header; an absent header means JSON. */
export function requestEncoding(contentType: string | undefined): BodyEncoding {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type === "" || type === JSON_TYPE) return "json";
  if (PROTO_TYPES.has(type)) return "proto";
  throw new UnsupportedMediaTypeError(
    `content type ${type} is not supported: use ${JSON_TYPE} or ${PROTO_TYPE}`,
  );
}

/** The response encoding an Accept header prefers (highest q wins; JSON unless protobuf is preferred). */
export function responseEncoding(accept: string | undefined): BodyEncoding {
  if (!accept) return "json";
  let best: { encoding: BodyEncoding; q: number } = { encoding: "json", q: -1 };
  for (const part of accept.split(",")) {
    const [typePart, ...params] = part.split(";");
    const type = (typePart ?? "").trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split("=").map((s) => s.trim());
      if (k === "q" && v !== undefined) q = Number.parseFloat(v) || 0;
    }
    const encoding: BodyEncoding | undefined = PROTO_TYPES.has(type)
      ? "proto"
      : type === JSON_TYPE || type === "application/*" || type === "*/*"
        ? "json"
        : undefined;
    if (encoding && q > best.q) best = { encoding, q };
  }
  return best.encoding;
}

export interface IncomingRequest {
  encoding: BodyEncoding;
  body: Uint8Array;
  /** Path variable values by proto field path (`a.b`). */
  variables: ReadonlyMap<string, string>;
  query: URLSearchParams;
}

/**
 * Builds the binary request message of a route from the HTTP request: the body (proto3 JSON
 * mapping or binary protobuf) as the whole request (`body: "*"`) or one field of it, then the path
 * variables and (for rules without `body: "*"`) query parameters. Binary bodies are forwarded with
 * their exact bytes; bindings are appended as a second encoded message, which protobuf merges
 * (a bound field overrides the same field in the body).
 */
export function buildRequest(route: RestRoute, request: IncomingRequest, registry?: Registry): Uint8Array {
  const reg = registry ?? contractRegistry();
  const desc = route.requestDesc;
  let bodyBytes: Uint8Array = new Uint8Array(0);
  if (route.body === "") {
    if (request.body.byteLength > 0) {
      throw new MalformedRequestError(
        `${route.label} takes no request body: send the fields as query parameters`,
      );
    }
  } else if (route.body === "*") {
    bodyBytes = decodeBody(desc, request, reg);
  } else {
    const field = desc.fields.find((f) => f.name === route.body) as DescField;
    if (field.fieldKind !== "message") {
      throw new MalformedRequestError(`${route.label}: body field ${route.body} is not a message`);
    }
    const inner = decodeBody(field.message, request, reg);
    const writer = new BinaryWriter();
    writer.tag(field.number, WireType.LengthDelimited).bytes(inner);
    bodyBytes = writer.finish();
  }

  const bound: JsonObject = {};
  for (const [path, value] of request.variables) {
    setJsonField(bound, desc, path.split("."), [value], `path variable ${path}`);
  }
  if (route.body !== "*") {
    const seen = new Set<string>();
    for (const key of request.query.keys()) {
      if (seen.has(key)) continue;
      seen.add(key);
      if (request.variables.has(key)) continue;
      setJsonField(bound, desc, key.split("."), request.query.getAll(key), `query parameter ${key}`);
    }
  }
  if (Object.keys(bound).length === 0) return bodyBytes;
  let boundBytes: Uint8Array;
  try {
    boundBytes = toBinary(desc, fromJson(desc, bound, { registry: reg }));
  } catch (error) {
    throw new MalformedRequestError(`bad path or query value: ${messageOf(error)}`);
  }
  const merged = new Uint8Array(bodyBytes.byteLength + boundBytes.byteLength);
  merged.set(bodyBytes, 0);
  merged.set(boundBytes, bodyBytes.byteLength);
  return merged;
}

function decodeBody(desc: DescMessage, request: IncomingRequest, registry: Registry): Uint8Array {
  if (request.encoding === "proto") {
    try {
      fromBinary(desc, request.body); // validate only: the exact bytes travel on
    } catch (error) {
      throw new MalformedRequestError(`body is not a valid binary ${desc.typeName}: ${messageOf(error)}`);
    }
    return request.body;
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(request.body).trim();
  if (text === "") return new Uint8Array(0);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new MalformedRequestError(`body is not valid JSON: ${messageOf(error)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new MalformedRequestError(`body must be a JSON object (${desc.typeName})`);
  }
  try {
    // fromJsonString (not fromJson) so duplicate keys are refused rather than silently merged.
    return toBinary(desc, fromJsonString(desc, text, { registry }));
  } catch (error) {
    throw new MalformedRequestError(messageOf(error));
  }
}

/** Writes a string value from a path or query into a JSON object, converted to the field's JSON form. */
function setJsonField(
  target: JsonObject,
  desc: DescMessage,
  path: readonly string[],
  values: readonly string[],
  what: string,
): void {
  let obj = target;
  let message = desc;
  for (let i = 0; i < path.length; i++) {
    const name = path[i] as string;
    const field = message.fields.find((f) => f.name === name || f.jsonName === name);
    if (!field) throw new MalformedRequestError(`${what}: ${message.typeName} has no field ${name}`);
    const last = i === path.length - 1;
    if (!last) {
      if (field.fieldKind !== "message") {
        throw new MalformedRequestError(`${what}: ${field.name} is not a message`);
      }
      const next = obj[field.jsonName];
      const child: JsonObject = next && typeof next === "object" && !Array.isArray(next) ? next : {};
      obj[field.jsonName] = child;
      obj = child;
      message = field.message;
      continue;
    }
    if (field.fieldKind === "map") throw new MalformedRequestError(`${what}: map fields cannot be bound`);
    if (field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.")) {
      throw new MalformedRequestError(`${what}: ${field.name} is a message; send it in the body`);
    }
    const converted = values.map((v) => scalarFromString(field, v, what));
    if (field.fieldKind === "list") obj[field.jsonName] = converted;
    else {
      if (values.length > 1) throw new MalformedRequestError(`${what}: ${field.name} takes one value`);
      obj[field.jsonName] = converted[0] ?? null;
    }
  }
}

function scalarFromString(field: DescField, value: string, what: string): JsonValue {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind;
  if (kind === "enum" && /^-?\d+$/.test(value)) return Number(value);
  if (kind === "scalar") {
    const scalar = field.fieldKind === "list" || field.fieldKind === "scalar" ? field.scalar : undefined;
    if (scalar === 8 /* BOOL */) {
      if (value === "true" || value === "1") return true;
      if (value === "false" || value === "0") return false;
      throw new MalformedRequestError(`${what}: ${field.name} must be true or false`);
    }
  }
  return value;
}

/** Encodes an upstream response for the client in the chosen encoding (honouring `response_body`). */
export function encodeResponse(
  route: RestRoute,
  bytes: Uint8Array,
  encoding: BodyEncoding,
  registry?: Registry,
): { contentType: string; body: Uint8Array | string } {
  const reg = registry ?? contractRegistry();
  const desc = route.responseDesc;
  if (encoding === "proto" && route.responseBody === "") return { contentType: PROTO_TYPE, body: bytes };
  const message = fromBinary(desc, bytes);
  if (encoding === "json") {
    const json = toJson(desc, message, { registry: reg }) as JsonObject;
    if (route.responseBody === "") return { contentType: JSON_TYPE, body: JSON.stringify(json) };
    const field = desc.fields.find((f) => f.name === route.responseBody) as DescField;
    return { contentType: JSON_TYPE, body: JSON.stringify(json[field.jsonName] ?? null) };
  }
  const field = desc.fields.find((f) => f.name === route.responseBody) as DescField;
  const value = (message as unknown as Record<string, unknown>)[field.localName];
  if (field.fieldKind !== "message" || value === undefined) {
    return { contentType: PROTO_TYPE, body: new Uint8Array(0) };
  }
  return { contentType: PROTO_TYPE, body: toBinary(field.message, value as never) };
}

/** A google.rpc.Status body (JSON with `@type`-tagged details, or binary). */
export function encodeStatus(
  status: RichStatus,
  encoding: BodyEncoding,
  registry?: Registry,
): { contentType: string; body: Uint8Array | string } {
  const bytes = encodeRichStatus(status);
  if (encoding === "proto") return { contentType: PROTO_TYPE, body: bytes };
  const reg = registry ?? contractRegistry();
  const desc = messageDesc("google.rpc.Status", reg);
  let json: JsonValue;
  try {
    json = toJson(desc, fromBinary(desc, bytes), { registry: reg, alwaysEmitImplicit: true });
  } catch {
    // A detail of a type the contracts do not know cannot be rendered as JSON: keep code and message.
    json = { code: status.code, message: status.message, details: [] };
  }
  return { contentType: JSON_TYPE, body: JSON.stringify(json) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
