/** A `google.api.http` path template could not be parsed. */
export class PathTemplateError extends Error {
  override readonly name = "PathTemplateError";
}

/** One variable of a template: the request field path it binds and whether it spans segments. */
export interface TemplateVariable {
  /** Proto field path, e.g. `["group_id", "group_uuid"]`. */
  fieldPath: string[];
  /** True for `{name=**}`-style variables: `/` inside the value is kept, nothing is percent-decoded to `/`. */
  multiSegment: boolean;
}

/** A compiled template (google/api/http.proto grammar: segments, `*`, `**`, `{var=…}`, `:verb`). */
export interface PathTemplate {
  readonly source: string;
  readonly variables: readonly TemplateVariable[];
  /** How many literal segments it has: more literal = more specific, tried first. */
  readonly literalCount: number;
  /** Matches a raw (still percent-encoded) URL path; returns the variable values or undefined. */
  match(path: string): Map<string, string> | undefined;
  /** The path in OpenAPI form (`/v1/groups/{group_id}`). */
  readonly openApiPath: string;
}

const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@-]+$/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses and compiles a path template; throws PathTemplateError when it is malformed. */
export function compilePathTemplate(template: string): PathTemplate {
  if (!template.startsWith("/")) throw new PathTemplateError(`template ${template} must start with /`);
  let body = template.slice(1);
  let verb: string | undefined;
  // A verb is the `:literal` after the last segment (colons inside `{…}` are not verbs).
  const lastBrace = body.lastIndexOf("}");
  const colon = body.indexOf(":", lastBrace + 1);
  if (colon >= 0) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
    if (!LITERAL.test(verb)) throw new PathTemplateError(`template ${template}: bad verb`);
  }
  const variables: TemplateVariable[] = [];
  let literalCount = 0;
  let regex = "^";
  let openApi = "";
  for (const token of splitTopLevel(body, template)) {
    if (token.startsWith("{")) {
      if (!token.endsWith("}")) throw new PathTemplateError(`template ${template}: unclosed variable`);
      const inner = token.slice(1, -1);
      const eq = inner.indexOf("=");
      const name = eq >= 0 ? inner.slice(0, eq) : inner;
      const fieldPath = name.split(".");
      if (!fieldPath.every((p) => IDENT.test(p))) {
        throw new PathTemplateError(`template ${template}: bad field path ${name}`);
      }
      const sub = eq >= 0 ? inner.slice(eq + 1).split("/") : ["*"];
      let part = "";
      let multiSegment = false;
      sub.forEach((s, i) => {
        if (i > 0) part += "/";
        if (s === "*") part += "[^/]+";
        else if (s === "**") {
          part += ".+";
          multiSegment = true;
        } else if (LITERAL.test(s)) {
          part += escapeRegex(s);
          multiSegment = true;
        } else throw new PathTemplateError(`template ${template}: bad segment ${s}`);
      });
      if (sub.length > 1) multiSegment = true;
      regex += `/(${part})`;
      variables.push({ fieldPath, multiSegment });
      openApi += `/{${name}}`;
    } else if (token === "*") {
      regex += "/[^/]+";
      openApi += "/*";
    } else if (token === "**") {
      regex += "/.+";
      openApi += "/**";
    } else if (LITERAL.test(token)) {
      regex += `/${escapeRegex(token)}`;
      openApi += `/${token}`;
      literalCount += 1;
    } else {
      throw new PathTemplateError(`template ${template}: bad segment ${token}`);
    }
  }
  if (verb !== undefined) {
    regex += `:${escapeRegex(verb)}`;
    openApi += `:${verb}`;
  }
  regex += "$";
  const compiled = new RegExp(regex);
  return {
    source: template,
    variables,
    literalCount,
    openApiPath: openApi,
    match(path) {
      const m = compiled.exec(path);
      if (!m) return undefined;
      const values = new Map<string, string>();
      for (let i = 0; i < variables.length; i++) {
        const variable = variables[i] as TemplateVariable;
        const raw = m[i + 1] ?? "";
        values.set(variable.fieldPath.join("."), decodeVariable(raw, variable.multiSegment));
      }
      return values;
    },
  };
}

/** Splits at `/` outside `{…}`. */
function splitTopLevel(body: string, template: string): string[] {
  const tokens: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of body) {
    if (ch === "{") depth += 1;
    if (ch === "}") depth -= 1;
    if (depth < 0 || depth > 1) throw new PathTemplateError(`template ${template}: unbalanced braces`);
    if (ch === "/" && depth === 0) {
      tokens.push(current);
      current = "";
    } else current += ch;
  }
  if (depth !== 0) throw new PathTemplateError(`template ${template}: unbalanced braces`);
  tokens.push(current);
  if (tokens.some((t) => t === "")) throw new PathTemplateError(`template ${template}: empty segment`);
  return tokens;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Percent-decodes a variable value. Per the http rule spec a single-segment variable decodes
 * everything; a multi-segment one keeps `%2F` encoded so it cannot forge a segment boundary.
 */
function decodeVariable(raw: string, multiSegment: boolean): string {
  if (!multiSegment) return decodeURIComponent(raw);
  return raw
    .split(/%2F/i)
    .map((part) => decodeURIComponent(part))
    .join("%2F");
}
