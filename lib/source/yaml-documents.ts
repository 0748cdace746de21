import { createRequire } from 'node:module';
import { FAILSAFE_SCHEMA, load, Type } from 'js-yaml';
import type * as Yaml from 'yaml';

/**
 * `yaml` is loaded on first use, in either thread: the plain streams every manifest generator
 * writes never need it, and loading it costs about 0.1 s of CPU and 10 MB. On the main thread
 * that is one stall, the first time a small odd or broken manifest is read there; loading it in
 * the background instead took that time from the start-up (or from whatever edit came at that
 * moment) on every run.
 */
const requireModule = createRequire(import.meta.url);
let yamlModule: typeof Yaml | undefined;
function yaml(): typeof Yaml {
  return (yamlModule ??= requireModule('yaml') as typeof Yaml);
}

/** One document of a YAML stream: its value (null when empty), or the first line of why it cannot be read. */
export type YamlDocument = { readonly value: unknown } | { readonly error: string };

/**
 * Every document of a YAML stream, numbered as a reader counts them: each `---` starts one, and
 * text before the first `---` is one only if it holds more than comments.
 *
 * js-yaml reads manifests about ten times faster than `yaml` (a start-up with thousands of
 * objects spends most of its time here), but `yaml` says where and why a document is broken,
 * caps alias expansion and resolves tags as before. So js-yaml takes the plain streams every
 * manifest generator writes, one document at a time, with a schema that resolves scalars as
 * `yaml` does; a stream with anything else — tags, aliases, directives, `...`, or a document
 * js-yaml refuses — is read whole by `yaml`, exactly as it always was.
 */
export function parseYamlDocuments(text: string): YamlDocument[] {
  return quickDocuments(text) ?? fullDocuments(text);
}

/** The reference reader: `yaml`, with per-document errors and alias expansion capped. */
export function fullDocuments(text: string): YamlDocument[] {
  return yaml()
    .parseAllDocuments(text)
    .map((doc): YamlDocument => {
      if (doc.errors.length > 0) return { error: firstLine(doc.errors[0]!.message) };
      try {
        return { value: doc.toJS({ maxAliasCount: 100 }) };
      } catch (err) {
        return { error: firstLine((err as Error).message) };
      }
    });
}

// YAML 1.2 core schema scalars, resolved as `yaml` resolves them. js-yaml's own core schema
// differs at the edges (it reads `-0x1F` and `0b101` as numbers, `-.5` as a string), and the
// same manifest must not mean two things depending on which reader took it.
//
// js-yaml asks every implicit type about every plain scalar (names, addresses, protocols), so the
// checks come before the patterns: null and bool are whole-string comparisons equal to their
// patterns, and a number starts with a digit, a sign or a dot (reading 10 files of 1,000 Services
// and their slices: 508 → 473 ms of CPU, js-yaml's own work being about 370 of it).
const INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const FLOAT = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
function mayBeNumber(s: string): boolean {
  const c = s.charCodeAt(0);
  return (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
}
const coreNull = new Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  // ^(?:~|[Nn]ull|NULL)?$
  resolve: (s: string) => s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL',
  construct: () => null,
});
const coreBool = new Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  // ^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$
  resolve: (s: string) => s === 'true' || s === 'True' || s === 'TRUE' || s === 'false' || s === 'False' || s === 'FALSE',
  construct: (s: string) => s[0] === 't' || s[0] === 'T',
});
const coreInt = new Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (s: string) => mayBeNumber(s) && INT.test(s),
  construct: (s: string) => (s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : parseInt(s, 10)),
});
const coreFloat = new Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (s: string) => mayBeNumber(s) && FLOAT.test(s),
  construct: (s: string) => {
    const tail = s.slice(-3).toLowerCase();
    if (tail === 'nan') return NaN;
    if (tail === 'inf') return s.startsWith('-') ? -Infinity : Infinity;
    return parseFloat(s);
  },
});
const CORE = FAILSAFE_SCHEMA.extend({ implicit: [coreNull, coreBool, coreInt, coreFloat] });

/** A line starting a document: `---` then a space, a line break or the end. */
const DOCUMENT_START = /^---(?=[ \t\r\n]|$)/gm;
/**
 * What js-yaml reads differently from `yaml`, or what only `yaml` checks. A pattern may also
 * match harmless text (`a : b`, a quoted `" *"`): that only costs speed.
 */
const NOT_QUICK = [
  // Characters JavaScript takes for line ends or blanks (so `^` or `\\s` would see a line or a
  // blank that YAML does not), and byte order marks between documents.
  /[\u2028\u2029\uFEFF]/,
  // Directives (`%YAML`).
  /^%/m,
  // Explicit document ends, and `---` glued to text (js-yaml takes `---a: 1` as a document start).
  /^(?:\.\.\.|---[^ \t\r\n])/m,
  // A tag (`!`) or alias (`*`) where a node can start: `yaml` resolves tags and caps alias expansion.
  /(?:^|[\s[{,])[!*][^ \t\r\n[\]{},]/m,
  // Keys that are not plain strings once read: explicit (`? `), flow collections (`[a, b]: c`),
  // null (`~: a`). Each reader turns them into a different string.
  /(?:^|[\s[{,])\?(?:[ \t\r\n]|$)/m,
  /[\]}][ \t]*:(?:[ \t\r\n]|$)/m,
  /(?:^|[\s[{,])(?:~|[Nn]ull|NULL)?[ \t]*:(?:[ \t\r\n]|$)/m,
];
/** A line with more than blanks or a comment (YAML's blanks: a no-break space is content). */
const CONTENT = /^[ \t]*[^ \t\r\n#]/m;

/** The documents as js-yaml reads them; undefined when the text needs `yaml` (see NOT_QUICK). */
export function quickDocuments(text: string): YamlDocument[] | undefined {
  // Both readers skip a byte order mark at the start.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (NOT_QUICK.some((pattern) => pattern.test(text))) return undefined;
  const starts: number[] = [];
  for (const m of text.matchAll(DOCUMENT_START)) starts.push(m.index);
  if (starts[0] !== 0 && CONTENT.test(text.slice(0, starts[0] ?? text.length))) starts.unshift(0);
  const out: YamlDocument[] = [];
  for (let i = 0; i < starts.length; i++) {
    let value: unknown;
    try {
      value = load(text.slice(starts[i], starts[i + 1]), { schema: CORE });
    } catch {
      return undefined;
    }
    out.push({ value: value ?? null });
  }
  return out;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.replace(/:$/, '');
}
