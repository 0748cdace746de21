import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { NOT_PLAIN, plainAlphabet, readPlainDocument } from './plain-yaml-reader.js';
import { jsYaml } from './yaml-core-scalars.js';
import { quickReadable } from './yaml-quick-check.js';

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
 * `yaml` does (and the plain reader, faster again, takes the documents it can read); a stream
 * with anything else — tags, aliases, directives, `...`, or a document js-yaml refuses — is read
 * whole by `yaml`, exactly as it always was.
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

/** The documents as js-yaml reads them (each by the plain reader where it can); undefined when the text needs `yaml` (see quickReadable). */
export function quickDocuments(text: string): YamlDocument[] | undefined {
  return collect((visit) => readQuick(text, Infinity, true, visit));
}

/**
 * The documents when the plain reader reads every one of them, each nested at most `maxDepth`
 * levels as the nesting scan of manifest-limits.ts counts them; otherwise undefined.
 */
export function plainDocuments(text: string, maxDepth: number): YamlDocument[] | undefined {
  return collect((visit) => readQuick(text, maxDepth, false, visit));
}

/**
 * The value of each document in turn, as plainDocuments reads them (`document` is its 1-based
 * number), while the plain reader can read them; false as soon as it cannot (the documents given
 * so far are then to be forgotten: the text is for the other readers). One document at a time, so
 * that a caller done with each before the next is read keeps only short-lived objects: on a file of
 * 1,000 Services and their slices, every object of the file stayed alive until the file was read,
 * and each young-generation collection copied them again.
 */
export function eachPlainDocument(text: string, maxDepth: number, visit: (value: unknown, document: number) => void): boolean {
  return readQuick(text, maxDepth, false, visit);
}

function collect(read: (visit: (value: unknown, document: number) => void) => boolean): YamlDocument[] | undefined {
  const out: YamlDocument[] = [];
  return read((value, document) => void (out[document - 1] = { value })) ? out : undefined;
}

/** A line starting a document: `---` then a space, a line break or the end. */
const DOCUMENT_START = /^---(?=[ \t\r\n]|$)/gm;
/** A line with more than blanks or a comment (YAML's blanks: a no-break space is content). */
const CONTENT = /^[ \t]*[^ \t\r\n#]/m;

function readQuick(text: string, maxDepth: number, withJsYaml: boolean, visit: (value: unknown, document: number) => void): boolean {
  // Both readers skip a byte order mark at the start.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (!quickReadable(text)) return false;
  const plain = plainAlphabet(text);
  if (!plain && !withJsYaml) return false;
  const starts: number[] = [];
  for (const m of text.matchAll(DOCUMENT_START)) starts.push(m.index);
  if (starts[0] !== 0 && CONTENT.test(text.slice(0, starts[0] ?? text.length))) starts.unshift(0);
  for (let i = 0; i < starts.length; i++) {
    const end = starts[i + 1] ?? text.length;
    let value = plain ? readPlainDocument(text, starts[i]!, end, maxDepth) : NOT_PLAIN;
    if (value === NOT_PLAIN) {
      if (!withJsYaml) return false;
      try {
        const { load, schema } = jsYaml();
        value = load(text.slice(starts[i], end), { schema });
      } catch {
        return false;
      }
    }
    visit(value ?? null, i + 1);
  }
  return true;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.replace(/:$/, '');
}
