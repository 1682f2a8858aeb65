/** Label and field selectors with the grammar and matching rules of apimachinery's labels/fields packages. */

import { badRequest } from "./status.ts";

type Operator = "exists" | "!exists" | "in" | "notin" | "gt" | "lt";

interface Requirement {
  key: string;
  op: Operator;
  values: string[];
}

/** A parsed selector: an object matches when every requirement holds. */
export type Matcher = (object: KubeObjectLike) => boolean;

/** Just enough of an object's shape for selectors. */
export interface KubeObjectLike {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

const SPECIALS = new Set(["!", "=", "(", ")", ",", "<", ">"]);

function tokenize(selector: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < selector.length) {
    const c = selector[i];
    if (/\s/.test(c)) {
      i++;
    } else if ((c === "!" || c === "=") && selector[i + 1] === "=") {
      tokens.push(c + "=");
      i += 2;
    } else if (SPECIALS.has(c)) {
      tokens.push(c);
      i++;
    } else {
      let j = i;
      while (j < selector.length && !SPECIALS.has(selector[j]) && !/\s/.test(selector[j])) j++;
      tokens.push(selector.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

const isIdentifier = (t: string | undefined): t is string =>
  t !== undefined && !SPECIALS.has(t) && t !== "==" && t !== "!=";

/**
 * Parses a label selector (`a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3`). Throws a 400 ApiError on bad syntax.
 */
export function parseLabelSelector(selector: string): Matcher {
  const tokens = tokenize(selector);
  const requirements: Requirement[] = [];
  let pos = 0;
  const fail = (why: string): never => {
    throw badRequest(`unable to parse requirement: found '${tokens[pos] ?? ""}', ${why} in "${selector}"`);
  };
  const value = (): string => (isIdentifier(tokens[pos]) ? tokens[pos++] : "");
  while (pos < tokens.length) {
    if (tokens[pos] === "!") {
      pos++;
      if (!isIdentifier(tokens[pos])) fail("expected a key after '!'");
      requirements.push({ key: tokens[pos++], op: "!exists", values: [] });
    } else {
      if (!isIdentifier(tokens[pos])) fail("expected a key");
      const key = tokens[pos++];
      const op = tokens[pos];
      if (op === undefined || op === ",") {
        requirements.push({ key, op: "exists", values: [] });
      } else if (op === "=" || op === "==" || op === "!=") {
        pos++;
        requirements.push({ key, op: op === "!=" ? "notin" : "in", values: [value()] });
      } else if (op === ">" || op === "<") {
        pos++;
        const v = value();
        if (!/^-?\d+$/.test(v)) fail("expected an integer value");
        requirements.push({ key, op: op === ">" ? "gt" : "lt", values: [v] });
      } else if (op === "in" || op === "notin") {
        pos++;
        if (tokens[pos++] !== "(") fail("expected '('");
        const values = [value()];
        while (tokens[pos] === ",") {
          pos++;
          values.push(value());
        }
        if (tokens[pos++] !== ")") fail("expected ')'");
        requirements.push({ key, op, values });
      } else {
        fail("expected one of: '=', '==', '!=', 'in', 'notin', '>', '<', ','");
      }
    }
    if (pos < tokens.length && tokens[pos++] !== ",") fail("expected ','");
    if (pos === tokens.length && tokens[pos - 1] === ",") fail("expected a requirement after ','");
  }
  return (object) => {
    const labels = object.metadata?.labels ?? {};
    return requirements.every(({ key, op, values }) => {
      const has = Object.hasOwn(labels, key);
      switch (op) {
        case "exists":
          return has;
        case "!exists":
          return !has;
        case "in":
          return has && values.includes(labels[key]);
        case "notin":
          return !has || !values.includes(labels[key]);
        case "gt":
        case "lt": {
          const n = Number(labels[key]);
          if (!has || !Number.isInteger(n)) return false;
          return op === "gt" ? n > Number(values[0]) : n < Number(values[0]);
        }
      }
    });
  };
}

/** The string a field selector compares against: nested lookup, booleans as "true"/"false", missing as "". */
function fieldValue(object: KubeObjectLike, path: string): string {
  let current: unknown = object;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object") return "";
    current = (current as Record<string, unknown>)[part];
  }
  return current === undefined || current === null ? "" : String(current);
}

/** Splits on an unescaped separator; `\,` `\=` `\!` and `\\` escape as in apimachinery's fields package. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\" && i + 1 < text.length) {
      current += text[i] + text[i + 1];
      i++;
    } else if (text[i] === separator) {
      parts.push(current);
      current = "";
    } else {
      current += text[i];
    }
  }
  parts.push(current);
  return parts;
}

const unescape = (text: string) => text.replace(/\\(.)/g, "$1");

/**
 * Parses a field selector (`metadata.name=x,spec.nodeName!=y`). Only `allowed` field labels are accepted,
 * like the real server, which answers 400 "field label not supported" for anything else.
 */
export function parseFieldSelector(selector: string, allowed: readonly string[]): Matcher {
  const terms = selector.trim() === "" ? [] : splitUnescaped(selector, ",").map((term) => {
    const match = /^(.*?)(!=|==|=)(.*)$/s.exec(term);
    if (match === null) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const [, field, op, raw] = match;
    const label = field.trim();
    if (!allowed.includes(label)) throw badRequest(`field label not supported: ${label}`);
    return { label, negate: op === "!=", value: unescape(raw) };
  });
  return (object) => terms.every((t) => (fieldValue(object, t.label) === t.value) !== t.negate);
}
