import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { descriptorSetBase64 } from "./gen/descriptor-set.js";
import { HttpRule } from "./gen/google/api/http.js";
import { RpcPolicy } from "./gen/phoenix/common/v1/common.js";

/**
 * Where the `.proto` files are: the package's own `proto/` folder (an installed package carries
 * a copy of the repository's `proto/`, made when it is packed), else the repository's `proto/`
 * (a workspace checkout, from `src/` or `dist/` alike).
 */
function findProtoRoot(): string {
  const packaged = fileURLToPath(new URL("../proto/", import.meta.url));
  const repository = fileURLToPath(new URL("../../../proto/", import.meta.url));
  for (const dir of [packaged, repository]) {
    if (existsSync(join(dir, "phoenix", "common", "v1", "common.proto"))) return dir;
  }
  return packaged;
}

/**
 * Absolute path of the directory holding the `.proto` contracts (the buf module root): pass it
 * as an include dir to `@grpc/proto-loader` together with `protoFiles`. Nothing else in this
 * package reads it: the descriptors come from the embedded descriptor set.
 */
export const protoRoot: string = findProtoRoot();

let cachedSet: Uint8Array | undefined;

/**
 * The FileDescriptorSet of every contract (phoenix.*, the vendored google.api/google.rpc files
 * and the well-known types they import), with comments. Feed it to
 * `protoLoader.loadFileDescriptorSetFromBuffer` for server reflection; it does not depend on
 * the repository layout at run time.
 */
export function fileDescriptorSet(): Uint8Array {
  cachedSet ??= new Uint8Array(Buffer.from(descriptorSetBase64, "base64"));
  return cachedSet;
}

/** One RPC as described by the contracts. */
export interface RpcInfo {
  /** Fully qualified service name, e.g. "phoenix.auth.v1.AuthService". */
  service: string;
  /** Method name, e.g. "RegisterUser". */
  method: string;
  /** gRPC path, e.g. "/phoenix.auth.v1.AuthService/RegisterUser". */
  path: string;
  /** Signature label of the RPC's signed request: its full name without the leading slash. */
  label: string;
  /** Fully qualified request message name. */
  requestType: string;
  /** Fully qualified response message name. */
  responseType: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
  /** The `google.api.http` REST mapping; only client-facing unary RPCs have one. */
  http: HttpRule | undefined;
  /** The `phoenix.common.v1.rpc_policy` option (auth kind, federated). */
  policy: RpcPolicy | undefined;
  /** The RPC's leading comment (what it does, `Auth:`, `Label:`, `Errors:`). */
  comment: string;
}

// Field numbers in google/protobuf/descriptor.proto and our extensions.
const FILE_SET_FILE = 1;
const FILE_PACKAGE = 2;
const FILE_SERVICE = 6;
const FILE_SOURCE_CODE_INFO = 9;
const SERVICE_NAME = 1;
const SERVICE_METHOD = 2;
const METHOD_NAME = 1;
const METHOD_INPUT = 2;
const METHOD_OUTPUT = 3;
const METHOD_OPTIONS = 4;
const METHOD_CLIENT_STREAMING = 5;
const METHOD_SERVER_STREAMING = 6;
const SOURCE_LOCATION = 1;
const LOCATION_PATH = 1;
const LOCATION_LEADING_COMMENTS = 3;
const OPTION_HTTP = 72295728;
const OPTION_RPC_POLICY = 51701;

/** Calls `visit` for each field of an encoded message; `visit` must consume the field or return false. */
function forEachField(bytes: Uint8Array, visit: (field: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (!visit(field, reader)) reader.skip(wireType, field);
  }
}

function readPath(reader: BinaryReader, path: number[]): void {
  // `path` is a packed repeated int32 (encoders may also emit it unpacked).
  const bytes = reader.bytes();
  const inner = new BinaryReader(bytes);
  while (inner.pos < inner.len) path.push(inner.int32());
}

interface RawMethod {
  name: string;
  input: string;
  output: string;
  options: Uint8Array | undefined;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

function parseMethod(bytes: Uint8Array): RawMethod {
  const m: RawMethod = {
    name: "",
    input: "",
    output: "",
    options: undefined,
    clientStreaming: false,
    serverStreaming: false,
  };
  forEachField(bytes, (field, r) => {
    if (field === METHOD_NAME) m.name = r.string();
    else if (field === METHOD_INPUT) m.input = r.string().replace(/^\./, "");
    else if (field === METHOD_OUTPUT) m.output = r.string().replace(/^\./, "");
    else if (field === METHOD_OPTIONS) m.options = r.bytes();
    else if (field === METHOD_CLIENT_STREAMING) m.clientStreaming = r.bool();
    else if (field === METHOD_SERVER_STREAMING) m.serverStreaming = r.bool();
    else return false;
    return true;
  });
  return m;
}

function parseFile(bytes: Uint8Array): RpcInfo[] {
  let pkg = "";
  const services: { name: string; methods: RawMethod[] }[] = [];
  const comments = new Map<string, string>();
  forEachField(bytes, (field, r) => {
    if (field === FILE_PACKAGE) {
      pkg = r.string();
    } else if (field === FILE_SERVICE) {
      const service = { name: "", methods: [] as RawMethod[] };
      forEachField(r.bytes(), (f, sr) => {
        if (f === SERVICE_NAME) service.name = sr.string();
        else if (f === SERVICE_METHOD) service.methods.push(parseMethod(sr.bytes()));
        else return false;
        return true;
      });
      services.push(service);
    } else if (field === FILE_SOURCE_CODE_INFO) {
      forEachField(r.bytes(), (f, lr) => {
        if (f !== SOURCE_LOCATION) return false;
        const path: number[] = [];
        let leading = "";
        forEachField(lr.bytes(), (lf, pr) => {
          if (lf === LOCATION_PATH) readPath(pr, path);
          else if (lf === LOCATION_LEADING_COMMENTS) leading = pr.string();
          else return false;
          return true;
        });
        comments.set(path.join("."), leading);
        return true;
      });
    } else {
      return false;
    }
    return true;
  });

  const rpcs: RpcInfo[] = [];
  services.forEach((service, si) => {
    const serviceName = pkg ? `${pkg}.${service.name}` : service.name;
    service.methods.forEach((m, mi) => {
      let http: HttpRule | undefined;
      let policy: RpcPolicy | undefined;
      if (m.options) {
        forEachField(m.options, (f, or) => {
          if (f === OPTION_HTTP) http = HttpRule.decode(or.bytes());
          else if (f === OPTION_RPC_POLICY) policy = RpcPolicy.decode(or.bytes());
          else return false;
          return true;
        });
      }
      rpcs.push({
        service: serviceName,
        method: m.name,
        path: `/${serviceName}/${m.name}`,
        label: `${serviceName}/${m.name}`,
        requestType: m.input,
        responseType: m.output,
        clientStreaming: m.clientStreaming,
        serverStreaming: m.serverStreaming,
        http,
        policy,
        comment: (comments.get(`${FILE_SERVICE}.${si}.${SERVICE_METHOD}.${mi}`) ?? "").trim(),
      });
    });
  });
  return rpcs;
}

let cachedCatalog: readonly RpcInfo[] | undefined;
let cachedFiles: readonly string[] | undefined;

/**
 * Every RPC of every service in the contracts, read from the embedded descriptor set: REST
 * mapping, auth policy, federation flag, label and documentation. The edge gateway builds its
 * routes from it; the federation gateway its allowlist of forwardable methods.
 */
export function rpcCatalog(): readonly RpcInfo[] {
  if (!cachedCatalog) {
    const rpcs: RpcInfo[] = [];
    forEachField(fileDescriptorSet(), (field, r) => {
      if (field !== FILE_SET_FILE) return false;
      rpcs.push(...parseFile(r.bytes()));
      return true;
    });
    cachedCatalog = Object.freeze(rpcs);
  }
  return cachedCatalog;
}

/** Paths (relative to `protoRoot`) of every phoenix contract file, for `@grpc/proto-loader`. */
export function protoFiles(): readonly string[] {
  if (!cachedFiles) {
    const names: string[] = [];
    forEachField(fileDescriptorSet(), (field, r) => {
      if (field !== FILE_SET_FILE) return false;
      forEachField(r.bytes(), (f, fr) => {
        if (f !== 1) return false;
        names.push(fr.string());
        return true;
      });
      return true;
    });
    cachedFiles = Object.freeze(names.filter((n) => n.startsWith("phoenix/")).sort());
  }
  return cachedFiles;
}
