import { InvalidSubjectError } from "./errors.js";

/**
 * NATS subject syntax, shared by both bus implementations: dot-separated non-empty tokens;
 * in patterns `*` matches exactly one token and `>` (last token only) matches one or more.
 */

const FORBIDDEN = /[\s\0]/;

function tokensOf(subject: string, allowWildcards: boolean): string[] {
  if (subject.length === 0 || FORBIDDEN.test(subject)) {
    throw new InvalidSubjectError(`invalid subject "${subject}": empty or contains whitespace`);
  }
  const tokens = subject.split(".");
  tokens.forEach((token, index) => {
    if (token.length === 0) throw new InvalidSubjectError(`invalid subject "${subject}": empty token`);
    const wildcard = token === "*" || token === ">";
    if (!wildcard && (token.includes("*") || token.includes(">"))) {
      throw new InvalidSubjectError(`invalid subject "${subject}": wildcard inside a token`);
    }
    if (wildcard && !allowWildcards) {
      throw new InvalidSubjectError(`invalid subject "${subject}": wildcards are only allowed in patterns`);
    }
    if (token === ">" && index !== tokens.length - 1) {
      throw new InvalidSubjectError(`invalid subject "${subject}": ">" must be the last token`);
    }
  });
  return tokens;
}

/** Throws `InvalidSubjectError` unless `subject` is a concrete subject (no wildcards). */
export function assertSubject(subject: string): void {
  tokensOf(subject, false);
}

/** Throws `InvalidSubjectError` unless `pattern` is a valid subject or pattern. */
export function assertPattern(pattern: string): void {
  tokensOf(pattern, true);
}

/** Compiles a pattern into a matcher for concrete subjects. */
export function subjectMatcher(pattern: string): (subject: string) => boolean {
  const wanted = tokensOf(pattern, true);
  return (subject) => {
    const tokens = subject.split(".");
    for (let i = 0; i < wanted.length; i++) {
      const want = wanted[i];
      if (want === ">") return tokens.length > i;
      if (i >= tokens.length) return false;
      if (want !== "*" && want !== tokens[i]) return false;
    }
    return tokens.length === wanted.length;
  };
}

/** True when `subject` (concrete) matches `pattern`. */
export function matchesSubject(pattern: string, subject: string): boolean {
  return subjectMatcher(pattern)(subject);
}

/** True when some concrete subject matches both patterns (two streams may not share one). */
export function patternsOverlap(a: string, b: string): boolean {
  const left = tokensOf(a, true);
  const right = tokensOf(b, true);
  for (let i = 0; ; i++) {
    const l = left[i];
    const r = right[i];
    if (l === undefined || r === undefined) return l === r;
    if (l === ">" || r === ">") return true;
    if (l !== "*" && r !== "*" && l !== r) return false;
  }
}
