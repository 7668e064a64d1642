import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { messageDesc } from "../contracts.js";
import type { RestRoute } from "../http/routes.js";
import type { StreamRoute } from "../ws/stream-bridge.js";

/** A JSON Schema / OpenAPI object. */
export type JsonSchema = { [key: string]: unknown };

export interface OpenApiOptions {
  restRoutes: readonly RestRoute[];
  streamRoutes: readonly StreamRoute[];
  title?: string;
  version?: string;
  /** Base URL in `servers` (omitted: relative to where the document was fetched). */
  serverUrl?: string;
}

const STATUS_REF = "#/components/schemas/google.rpc.Status";
const FIELD_MESSAGE_PATH = 2;
const MESSAGE_NESTED_PATH = 3;
const FILE_MESSAGE_PATH = 4;
const FILE_ENUM_PATH = 5;
const MESSAGE_ENUM_PATH = 4;

/**
 * The OpenAPI 3.1 document of the gateway, generated from the contracts: one operation per
 * REST binding (summary and description from the RPC's proto comment), schemas for every message
 * reachable from them in the proto3 JSON mapping (int64 as strings, bytes as base64, enums by
 * name, field comments as descriptions), the WebSocket streams as GET operations answering 101,
 * and the health endpoints.
 */
export function buildOpenApi(options: OpenApiOptions): JsonSchema {
  const schemas = new SchemaCollector();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const operationIds = new Set<string>();
  schemas.ref(messageDesc("google.rpc.Status"));
  // Error details travel as Any (`@type` + fields): document the one Phoenix sends.
  schemas.ref(messageDesc("phoenix.common.v1.ErrorDetail"));

  for (const route of options.restRoutes) {
    const path = route.template.openApiPath;
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[route.httpMethod.toLowerCase()] = restOperation(
      route,
      operationIds,
      schemas,
    );
  }
  for (const stream of options.streamRoutes) paths[stream.path] = { get: streamOperation(stream, schemas) };

  paths["/healthz"] = { get: fixedEndpoint("Liveness", "200 while the process serves HTTP.") };
  paths["/readyz"] = {
    get: fixedEndpoint(
      "Readiness",
      "200 when every upstream service answers SERVING to grpc.health.v1, else 503.",
    ),
  };
  paths["/openapi.json"] = { get: fixedEndpoint("This document", "The OpenAPI document of the gateway.") };

  return {
    openapi: "3.1.0",
    info: {
      title: options.title ?? "Phoenix homeserver client API",
      version: options.version ?? "v1",
      description:
        "REST and WebSocket front door of a Phoenix homeserver, generated from the protobuf contracts. Bodies use " +
        "the proto3 JSON mapping (application/json) or binary protobuf (application/x-protobuf). Errors are " +
        "google.rpc.Status objects.",
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    paths,
    components: { schemas: schemas.all() },
  };
}

function serviceNameOf(rpc: RestRoute["rpc"]): string {
  return rpc.service.split(".").pop() ?? rpc.service;
}

/** The operation of one REST binding; its id is made unique among `operationIds` (and added). */
function restOperation(route: RestRoute, operationIds: Set<string>, schemas: SchemaCollector): JsonSchema {
  const { rpc } = route;
  const serviceName = serviceNameOf(rpc);
  let operationId = `${serviceName}_${rpc.method}`;
  for (let n = 2; operationIds.has(operationId); n++) operationId = `${serviceName}_${rpc.method}_${n}`;
  operationIds.add(operationId);

  const parameters = restParameters(route, schemas);
  const bodyDesc = requestBodyDesc(route);
  const responseField = route.responseBody
    ? route.responseDesc.fields.find((f) => f.name === route.responseBody)
    : undefined;
  const { summary, description } = splitComment(rpc.comment);
  return dropUndefined({
    operationId,
    tags: [serviceName],
    summary,
    description,
    "x-grpc-method": rpc.path,
    ...(parameters.length > 0 ? { parameters: parameters.map(dropUndefined) } : {}),
    ...(bodyDesc
      ? {
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: schemas.ref(bodyDesc) },
              "application/x-protobuf": {
                schema: { type: "string", format: "binary", description: `binary ${bodyDesc.typeName}` },
              },
            },
          },
        }
      : {}),
    responses: {
      "200": {
        description: `OK: ${route.responseDesc.typeName}`,
        content: {
          "application/json": {
            schema: responseField ? schemas.fieldSchema(responseField) : schemas.ref(route.responseDesc),
          },
          "application/x-protobuf": { schema: { type: "string", format: "binary" } },
        },
      },
      default: errorResponse("The call failed: a google.rpc.Status; the HTTP status matches its code."),
    },
  });
}

/**
 * The template's variables as path parameters, then (unless the whole request is the body) the
 * request's other scalar, enum and scalar-list fields as query parameters.
 */
function restParameters(route: RestRoute, schemas: SchemaCollector): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  const bound = new Set<string>();
  for (const variable of route.template.variables) {
    const field = fieldAt(route.requestDesc, variable.fieldPath);
    bound.add(variable.fieldPath.join("."));
    parameters.push({
      name: variable.fieldPath.join("."),
      in: "path",
      required: true,
      description: field ? schemas.comment(field) : undefined,
      schema: field ? schemas.fieldSchema(field) : { type: "string" },
    });
  }
  if (route.body === "*") return parameters;
  for (const field of route.requestDesc.fields) {
    if (bound.has(field.name) || field.name === route.body) continue;
    if (field.fieldKind === "map" || field.fieldKind === "message") continue;
    if (field.fieldKind === "list" && field.listKind === "message") continue;
    parameters.push({
      name: field.jsonName,
      in: "query",
      required: false,
      description: schemas.comment(field) || undefined,
      schema: schemas.fieldSchema(field),
      ...(field.fieldKind === "list" ? { explode: true } : {}),
    });
  }
  return parameters;
}

/** The message sent as the HTTP body: the whole request (`*`), one message field of it, or none. */
function requestBodyDesc(route: RestRoute): DescMessage | undefined {
  if (route.body === "*") return route.requestDesc;
  if (!route.body) return undefined;
  return (route.requestDesc.fields.find((f) => f.name === route.body) as DescField & { message: DescMessage })
    .message;
}

/** A bidi-streaming RPC's WebSocket bridge as a GET answering 101. */
function streamOperation(stream: StreamRoute, schemas: SchemaCollector): JsonSchema {
  const { rpc } = stream;
  const serviceName = serviceNameOf(rpc);
  const { summary, description } = splitComment(rpc.comment);
  return dropUndefined({
    operationId: `${serviceName}_${rpc.method}_WebSocket`,
    tags: [serviceName],
    summary: `WebSocket: ${summary ?? rpc.method}`,
    description: [
      description ?? "",
      `WebSocket bridge of the bidi-streaming RPC ${rpc.path}. Client frames are ${stream.requestDesc.typeName}, ` +
        `server frames ${stream.responseDesc.typeName}: JSON text frames (default) or binary protobuf frames with ` +
        "`?encoding=proto`. The socket closes with 1000 when the stream ends and 4000 + the gRPC status code " +
        "(reason: the status message) when it fails.",
    ]
      .filter(Boolean)
      .join("\n\n"),
    "x-grpc-method": rpc.path,
    "x-websocket": {
      clientMessage: schemas.ref(stream.requestDesc),
      serverMessage: schemas.ref(stream.responseDesc),
    },
    parameters: [
      {
        name: "encoding",
        in: "query",
        required: false,
        schema: { type: "string", enum: ["json", "proto"], default: "json" },
      },
    ],
    responses: {
      "101": { description: "Switching protocols: the stream is open." },
      default: errorResponse("The upgrade was refused (unknown stream, rate limit)."),
    },
  });
}

function errorResponse(description: string): JsonSchema {
  return { description, content: { "application/json": { schema: { $ref: STATUS_REF } } } };
}

function fixedEndpoint(summary: string, description: string): JsonSchema {
  return {
    operationId: `Gateway_${summary.replace(/\W/g, "")}`,
    tags: ["Gateway"],
    summary,
    description,
    responses: {
      "200": { description: "OK", content: { "application/json": { schema: { type: "object" } } } },
      "503": { description: "Not ready", content: { "application/json": { schema: { type: "object" } } } },
    },
  };
}

function fieldAt(desc: DescMessage, path: readonly string[]): DescField | undefined {
  let current: DescMessage | undefined = desc;
  let field: DescField | undefined;
  for (const name of path) {
    field = current?.fields.find((f) => f.name === name);
    current = field?.fieldKind === "message" ? field.message : undefined;
  }
  return field;
}

function splitComment(comment: string): { summary: string | undefined; description: string | undefined } {
  const text = comment.trim();
  if (!text) return { summary: undefined, description: undefined };
  const firstParagraph = text.split(/\n\s*\n/)[0] ?? text;
  const sentence = /^(.+?\.)(\s|$)/s.exec(firstParagraph.replace(/\s*\n\s*/g, " "));
  return { summary: (sentence?.[1] ?? firstParagraph).slice(0, 200), description: text };
}

function dropUndefined(obj: JsonSchema): JsonSchema {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

/** Collects schemas of every message and enum referenced, with proto comments as descriptions. */
class SchemaCollector {
  private readonly schemas = new Map<string, JsonSchema>();
  private readonly comments = new Map<DescMessage["file"], Map<string, string>>();

  all(): Record<string, JsonSchema> {
    return Object.fromEntries([...this.schemas.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  ref(desc: DescMessage): JsonSchema {
    const wkt = wellKnown(desc);
    if (wkt) return wkt;
    if (!this.schemas.has(desc.typeName)) {
      this.schemas.set(desc.typeName, {}); // placeholder: recursive messages
      this.schemas.set(desc.typeName, this.messageSchema(desc));
    }
    return { $ref: `#/components/schemas/${desc.typeName}` };
  }

  private enumRef(desc: DescEnum): JsonSchema {
    if (!this.schemas.has(desc.typeName)) {
      this.schemas.set(
        desc.typeName,
        dropUndefined({
          type: "string",
          enum: desc.values.map((v) => v.name),
          description: this.lookup(desc.file, enumPath(desc)) || undefined,
        }),
      );
    }
    return { $ref: `#/components/schemas/${desc.typeName}` };
  }

  private messageSchema(desc: DescMessage): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    for (const field of desc.fields) {
      const schema = this.fieldSchema(field);
      const description = this.comment(field);
      properties[field.jsonName] = description ? { ...schema, description } : schema;
    }
    const oneofs = desc.oneofs
      .filter((o) => !o.proto.name.startsWith("_"))
      .map((o) => `At most one of ${o.fields.map((f) => f.jsonName).join(", ")} (oneof ${o.name}).`);
    const description = [this.lookup(desc.file, messagePath(desc)), ...oneofs].filter(Boolean).join("\n\n");
    return dropUndefined({
      type: "object",
      description: description || undefined,
      properties,
      additionalProperties: false,
    });
  }

  /** The JSON schema of one field's value in the proto3 JSON mapping. */
  fieldSchema(field: DescField): JsonSchema {
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar);
      case "enum":
        return this.enumRef(field.enum);
      case "message":
        return this.ref(field.message);
      case "list": {
        const items =
          field.listKind === "scalar"
            ? scalarSchema(field.scalar)
            : field.listKind === "enum"
              ? this.enumRef(field.enum)
              : this.ref(field.message);
        return { type: "array", items };
      }
      case "map": {
        const values =
          field.mapKind === "scalar"
            ? scalarSchema(field.scalar)
            : field.mapKind === "enum"
              ? this.enumRef(field.enum)
              : this.ref(field.message);
        return { type: "object", additionalProperties: values };
      }
    }
  }

  /** A field's leading proto comment. */
  comment(field: DescField): string {
    const parent = field.parent;
    const index = parent.proto.field.indexOf(field.proto);
    return this.lookup(parent.file, [...messagePath(parent), FIELD_MESSAGE_PATH, index]);
  }

  private lookup(file: DescMessage["file"], path: readonly number[]): string {
    let byPath = this.comments.get(file);
    if (!byPath) {
      byPath = new Map();
      for (const location of file.proto.sourceCodeInfo?.location ?? []) {
        if (location.leadingComments) byPath.set(location.path.join("."), location.leadingComments.trim());
      }
      this.comments.set(file, byPath);
    }
    return byPath.get(path.join(".")) ?? "";
  }
}

function messagePath(desc: DescMessage): number[] {
  if (desc.parent)
    return [...messagePath(desc.parent), MESSAGE_NESTED_PATH, desc.parent.nestedMessages.indexOf(desc)];
  return [FILE_MESSAGE_PATH, desc.file.messages.indexOf(desc)];
}

function enumPath(desc: DescEnum): number[] {
  if (desc.parent)
    return [...messagePath(desc.parent), MESSAGE_ENUM_PATH, desc.parent.nestedEnums.indexOf(desc)];
  return [FILE_ENUM_PATH, desc.file.enums.indexOf(desc)];
}

const INT64 = /^-?[0-9]+$/.source;

function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int64", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: INT64 };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", format: "byte", contentEncoding: "base64" };
  }
}

function wellKnown(desc: DescMessage): JsonSchema | undefined {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$", description: 'e.g. "1.5s"' };
    case "google.protobuf.Any":
      return {
        type: "object",
        properties: { "@type": { type: "string" } },
        required: ["@type"],
        additionalProperties: true,
      };
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
    default:
      return undefined;
  }
}
