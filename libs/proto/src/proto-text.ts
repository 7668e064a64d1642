import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/** One rpc as written in a .proto file. */
export interface ProtoRpc {
  file: string;
  pkg: string;
  service: string;
  name: string;
  requestType: string;
  responseType: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
  /** The `//` comment block right above the rpc, without the slashes. */
  comment: string;
  /** The rpc's option block (between its braces), empty when it has none. */
  body: string;
}

/** One top-level message as written in a .proto file. */
export interface ProtoMessage {
  file: string;
  pkg: string;
  name: string;
  body: string;
}

const RPC_RE =
  /^\s*rpc\s+(\w+)\s*\(\s*(stream\s+)?([\w.]+)\s*\)\s*returns\s*\(\s*(stream\s+)?([\w.]+)\s*\)\s*([{;])/;

function braceDelta(line: string): number {
  const code = line.replace(/\/\/.*$/, "").replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return (code.match(/{/g)?.length ?? 0) - (code.match(/}/g)?.length ?? 0);
}

/**
 * A small reader of our buf-formatted .proto files: services with their rpcs (comment and
 * option block) and top-level messages. Used by the contract tests; not a general parser.
 */
export function parseProtoText(text: string, file: string): { rpcs: ProtoRpc[]; messages: ProtoMessage[] } {
  const lines = text.split("\n");
  const rpcs: ProtoRpc[] = [];
  const messages: ProtoMessage[] = [];
  let pkg = "";
  let service: string | undefined;
  let depth = 0;
  let comment: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const commentMatch = /^\s*\/\/ ?(.*)$/.exec(line);
    if (commentMatch) {
      comment.push(commentMatch[1] ?? "");
      continue;
    }
    const pkgMatch = /^package\s+([\w.]+);/.exec(line);
    if (pkgMatch) pkg = pkgMatch[1] ?? "";
    const serviceMatch = depth === 0 ? /^service\s+(\w+)\s*{/.exec(line) : null;
    const messageMatch = depth === 0 ? /^message\s+(\w+)\s*{/.exec(line) : null;
    const rpcMatch = service !== undefined && depth === 1 ? RPC_RE.exec(line) : null;
    if (serviceMatch) {
      service = serviceMatch[1];
    } else if (messageMatch) {
      const start = i;
      let d = braceDelta(line);
      while (d > 0 && i + 1 < lines.length) d += braceDelta(lines[++i] ?? "");
      messages.push({ file, pkg, name: messageMatch[1] ?? "", body: lines.slice(start + 1, i).join("\n") });
      comment = [];
      continue;
    } else if (rpcMatch && service !== undefined) {
      const start = i;
      if (rpcMatch[6] === "{") {
        let d = braceDelta(line);
        while (d > 0 && i + 1 < lines.length) d += braceDelta(lines[++i] ?? "");
      }
      rpcs.push({
        file,
        pkg,
        service,
        name: rpcMatch[1] ?? "",
        requestType: rpcMatch[3] ?? "",
        responseType: rpcMatch[5] ?? "",
        clientStreaming: Boolean(rpcMatch[2]),
        serverStreaming: Boolean(rpcMatch[4]),
        comment: comment.join("\n"),
        body: rpcMatch[6] === "{" ? lines.slice(start + 1, i).join("\n") : "",
      });
      comment = [];
      continue;
    }
    depth += braceDelta(line);
    if (depth === 0) service = undefined;
    comment = [];
  }
  return { rpcs, messages };
}

/** Reads every .proto file under `dir` (recursively); paths in the result are relative to `root`. */
export function readProtoTree(root: string, dir: string): { rpcs: ProtoRpc[]; messages: ProtoMessage[] } {
  const rpcs: ProtoRpc[] = [];
  const messages: ProtoMessage[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".proto")) {
        const parsed = parseProtoText(readFileSync(path, "utf8"), relative(root, path));
        rpcs.push(...parsed.rpcs);
        messages.push(...parsed.messages);
      }
    }
  };
  walk(dir);
  return { rpcs, messages };
}
