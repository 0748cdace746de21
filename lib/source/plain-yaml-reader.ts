import { resolvePlainScalar } from './yaml-core-scalars.js';

/**
 * A reader for the plain subset of YAML that manifest generators and kubectl write: block
 * mappings and sequences, one-line flow collections, plain and one-line quoted scalars (no
 * escapes), comments. Everything else leaves the document to js-yaml: anchors, aliases, tags,
 * block scalars, scalars over several lines, explicit keys, compact nested sequences, odd
 * indentation, duplicate keys, and any character js-yaml might read otherwise (tabs, carriage
 * returns, control and non-BMP characters). Where it reads a document, the value is the one js-yaml
 * gives with the schema of jsYaml() (a differential spec holds the two equal).
 *
 * Why not a library: reading the bench's 10 files of 1,000 Services and their slices took about
 * 550 ms of CPU with js-yaml 4, 610 with js-yaml 5.5 and 7,000 with `yaml` 2.9; this reader takes
 * a fraction of that (see bench/yaml-parse-bench.ts), and start-up waits for it.
 *
 * It works line by line with its own stack (no recursion), so no input can overflow the call stack,
 * and it gives up on a document as soon as its nesting estimate goes over `maxDepth`: the same
 * estimate as the nesting scan of manifest-limits.ts, so a file it reads whole would have passed
 * that scan, which then need not run.
 */

/** What readPlainDocument returns for a document it leaves to js-yaml. */
export const NOT_PLAIN: unique symbol = Symbol('not plain');

type Mapping = Record<string, unknown>;
interface Frame {
  readonly seq: boolean;
  readonly indent: number;
  readonly node: unknown[] | Mapping;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;
const HASH = 0x23;
const DASH = 0x2d;
const COLON = 0x3a;
const COMMA = 0x2c;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;
const BACKSLASH = 0x5c;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;
const DOT = 0x2e;
const PERCENT = 0x25;

/**
 * Characters outside the reader's alphabet: tabs, line ends other than \n, controls, surrogates,
 * byte order marks, and the blanks that JavaScript's patterns take for spaces and YAML does not.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNREAD = /[\x00-\x09\x0b-\x1f\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ud800-\udfff\ufeff\ufffe\uffff]/;

/** Whether the reader's alphabet holds every character of the text (test it once per text). */
export function plainAlphabet(text: string): boolean {
  return !UNREAD.test(text);
}

/**
 * `c` may start a plain scalar given the character after it: not an indicator, except a `-` not
 * followed by a blank or (in flow) a flow indicator. `?` and `:` starts, legal in YAML 1.2, are
 * left to js-yaml.
 */
function plainStart(c: number, next: number, flow: boolean): boolean {
  switch (c) {
    case DASH:
      return !(Number.isNaN(next) || next === SPACE || next === NEWLINE || (flow && (next === COMMA || next === CLOSE_SQUARE || next === CLOSE_CURLY || next === OPEN_SQUARE || next === OPEN_CURLY)));
    case 0x3f: // ?
    case COLON:
    case COMMA:
    case OPEN_SQUARE:
    case CLOSE_SQUARE:
    case OPEN_CURLY:
    case CLOSE_CURLY:
    case HASH:
    case 0x26: // &
    case 0x2a: // *
    case 0x21: // !
    case 0x7c: // |
    case 0x3e: // >
    case SINGLE_QUOTE:
    case DOUBLE_QUOTE:
    case PERCENT:
    case 0x40: // @
    case 0x60: // `
    case SPACE:
    case NEWLINE:
      return false;
    default:
      return !Number.isNaN(c);
  }
}

/**
 * Flow collections nested deeper than this are left to js-yaml: manifests nest them a few levels
 * at most, and a reading of thousands of deep ones (built to be slow) is js-yaml's, within the
 * parse thread's time limit, as before.
 */
const MAX_FLOW_DEPTH = 16;

/** Keys longer than this are left to js-yaml (`yaml` refuses implicit keys over 1024 characters). */
const MAX_KEY = 1024;

/**
 * Plain keys read before, by their first and last characters and length. A key new to the text
 * is a string V8 must look up in its table of property names before it can store the property;
 * one it has stored before is found at once. Reading a key through this cache took about a third
 * of the time of slicing it afresh (10 files of 1,000 Services: ~450 → ~150 ns a key).
 */
const keyCache: Array<string | undefined> = new Array<string | undefined>(4096);

/** The plain key text[i, e) as a property name: a string as js-yaml stringifies keys, or NOT_PLAIN when too long. */
function plainKey(text: string, i: number, e: number): string | typeof NOT_PLAIN {
  const slot = (text.charCodeAt(i) * 961 + text.charCodeAt(e - 1) * 31 + e - i) & 4095;
  const cached = keyCache[slot];
  if (cached !== undefined && cached.length === e - i) {
    let k = 0;
    while (k < cached.length && cached.charCodeAt(k) === text.charCodeAt(i + k)) k++;
    if (k >= cached.length) return cached;
  }
  if (e - i > MAX_KEY) return NOT_PLAIN;
  const s = text.slice(i, e);
  const key = resolvePlainScalar(s);
  if (key !== s) return String(key);
  // Only a key that means itself is kept (`0x1F` is the key "31"), as V8's own copy of the name:
  // the slice becomes a reference to that copy, whose characters are read more slowly.
  const name = Object.keys({ [s]: null })[0]!;
  keyCache[slot] = name;
  return name;
}

/**
 * The value of the document text[start, end), or NOT_PLAIN. `end` is the start of the next
 * document (or the text's length); the text must pass plainAlphabet.
 */
export function readPlainDocument(text: string, start: number, end: number, maxDepth: number): unknown {
  return new PlainDocumentReader(text, end, maxDepth).read(start);
}

class PlainDocumentReader {
  readonly #text: string;
  readonly #end: number;
  readonly #maxDepth: number;
  readonly #frames: Frame[] = [];
  /** The distinct indentations of the lines open above this one: the nesting scan's block count. */
  readonly #indents: number[] = [];
  /** A `key:` or `-` with nothing after it: the node it names starts on a later line, or is null. */
  #pendingNode: unknown[] | Mapping | undefined;
  #pendingKey: string | number = 0;
  /** The indentation of the mapping or sequence holding the pending entry (-1: the document itself). */
  #pendingIndent = -1;
  #pendingInMapping = false;
  #root: unknown = null;
  /** Where the last scalar or flow collection read ended. */
  #at = 0;

  constructor(text: string, end: number, maxDepth: number) {
    this.#text = text;
    this.#end = end;
    this.#maxDepth = maxDepth;
  }

  read(start: number): unknown {
    const text = this.#text;
    const end = this.#end;
    let pos = start;
    this.#pendingInMapping = false;
    // The document's own `---` line: nothing but a comment may follow the marker.
    if (text.startsWith('---', pos)) {
      const eol = this.#lineEnd(pos);
      if (!this.#restIsBlank(pos + 3, eol)) return NOT_PLAIN;
      pos = eol + 1;
    }
    let root = true;
    while (pos < end) {
      const lineStart = pos;
      const eol = this.#lineEnd(pos);
      pos = eol + 1;
      let i = lineStart;
      while (i < eol && text.charCodeAt(i) === SPACE) i++;
      if (i === eol) continue;
      const c = text.charCodeAt(i);
      if (c === HASH) continue;
      const indent = i - lineStart;
      // Directives, document markers and `...` are for js-yaml.
      if (indent === 0 && (c === PERCENT || ((c === DASH || c === DOT) && text.charCodeAt(i + 1) === c && text.charCodeAt(i + 2) === c))) return NOT_PLAIN;
      if (!this.#countIndent(indent)) return NOT_PLAIN;
      const entry = c === DASH && (i + 1 === eol || text.charCodeAt(i + 1) === SPACE);
      if (this.#pendingNode !== undefined || root) {
        const opens = indent > this.#pendingIndent || (this.#pendingInMapping && indent === this.#pendingIndent && entry);
        // After an empty `-`, js-yaml takes the next entry for one of the same sequence even when
        // it is less indented: that reading is js-yaml's to give.
        if (!root && !this.#pendingInMapping && indent < this.#pendingIndent) return NOT_PLAIN;
        if (opens) {
          const frame: Frame = entry ? { seq: true, indent, node: [] } : { seq: false, indent, node: {} };
          if (root) this.#root = frame.node;
          else this.#setPending(frame.node);
          this.#frames.push(frame);
        }
        this.#pendingNode = undefined;
        root = false;
      }
      const frames = this.#frames;
      while (frames.length > 0 && frames[frames.length - 1]!.indent > indent) frames.pop();
      let top = frames[frames.length - 1];
      // A sequence at its parent key's indentation ends at the parent's next key.
      if (top !== undefined && top.seq && !entry && top.indent === indent) {
        frames.pop();
        top = frames[frames.length - 1];
      }
      // Deeper than the node in force (a scalar continued, or an error), or after the document's node.
      if (top === undefined || top.indent !== indent || top.seq !== entry) return NOT_PLAIN;
      const ok = entry ? this.#entry(top.node as unknown[], indent, i, lineStart, eol) : this.#pair(top.node as Mapping, indent, i, eol);
      if (!ok) return NOT_PLAIN;
    }
    return this.#root;
  }

  #lineEnd(pos: number): number {
    const eol = this.#text.indexOf('\n', pos);
    return eol < 0 || eol > this.#end ? this.#end : eol;
  }

  /** The nesting scan's block count for a line at `indent`; false when over the limit. */
  #countIndent(indent: number): boolean {
    const indents = this.#indents;
    while (indents.length > 0 && indents[indents.length - 1]! > indent) indents.pop();
    if (indents.length === 0 || indents[indents.length - 1]! < indent) indents.push(indent);
    return indents.length <= this.#maxDepth;
  }

  #setPending(value: unknown): void {
    const node = this.#pendingNode!;
    if (Array.isArray(node)) node[this.#pendingKey as number] = value;
    else node[this.#pendingKey as string] = value;
  }

  /** Only blanks, or a comment after a blank, from `i` to the line's end. */
  #restIsBlank(i: number, eol: number): boolean {
    const text = this.#text;
    const from = i;
    while (i < eol && text.charCodeAt(i) === SPACE) i++;
    return i === eol || (text.charCodeAt(i) === HASH && i > from);
  }

  /** A sequence entry `- …` at `i`; the sequence is at `indent`. */
  #entry(seq: unknown[], indent: number, i: number, lineStart: number, eol: number): boolean {
    // The `-` is a level of the nesting scan's count.
    const depth = this.#indents.length + 1;
    if (depth > this.#maxDepth) return false;
    const text = this.#text;
    let j = i + 1;
    while (j < eol && text.charCodeAt(j) === SPACE) j++;
    if (j === eol || text.charCodeAt(j) === HASH) {
      this.#pend(seq, seq.length, indent, false);
      seq.push(null);
      return true;
    }
    const c = text.charCodeAt(j);
    const next = text.charCodeAt(j + 1);
    // `- - a` (a sequence in a sequence on one line) is for js-yaml.
    if (c === DASH && (j + 1 === eol || next === SPACE)) return false;
    if (c === OPEN_SQUARE || c === OPEN_CURLY) {
      const value = this.#flow(j, eol, depth);
      if (value === NOT_PLAIN || !this.#restIsBlank(this.#at, eol)) return false;
      seq.push(value);
      return true;
    }
    // A scalar, or the first key of a mapping that goes on at this column.
    const key = this.#keyOrScalar(j, eol);
    if (key === NOT_PLAIN) return false;
    if (this.#text.charCodeAt(this.#at) !== COLON) {
      seq.push(key);
      return this.#restIsBlank(this.#at, eol);
    }
    const column = j - lineStart;
    const mapping: Mapping = {};
    seq.push(mapping);
    this.#frames.push({ seq: false, indent: column, node: mapping });
    return this.#value(mapping, key as string, column, this.#at + 1, eol, depth);
  }

  /** A `key: …` line at `i`; the mapping is at `indent`. */
  #pair(mapping: Mapping, indent: number, i: number, eol: number): boolean {
    const key = this.#keyOrScalar(i, eol);
    if (key === NOT_PLAIN || this.#text.charCodeAt(this.#at) !== COLON) return false;
    return this.#value(mapping, key as string, indent, this.#at + 1, eol, this.#indents.length);
  }

  /**
   * A quoted or plain scalar at `i`, ending at `: `, `:` at the line's end, ` #` or the line's end;
   * `#at` is left on the `:` when there is one (then the scalar is a key: a string, as js-yaml
   * stringifies keys), else after the scalar.
   */
  #keyOrScalar(i: number, eol: number): unknown {
    const text = this.#text;
    const c = text.charCodeAt(i);
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const value = this.#quoted(i, eol);
      if (value === NOT_PLAIN) return NOT_PLAIN;
      const after = this.#at;
      if (text.charCodeAt(after) === COLON) {
        const next = text.charCodeAt(after + 1);
        if (after + 1 !== eol && next !== SPACE) return NOT_PLAIN;
      }
      return value;
    }
    if (!plainStart(c, text.charCodeAt(i + 1), false)) return NOT_PLAIN;
    let k = i + 1;
    let colon = false;
    for (; k < eol; k++) {
      const ch = text.charCodeAt(k);
      if (ch === COLON) {
        if (k + 1 === eol || text.charCodeAt(k + 1) === SPACE) {
          colon = true;
          break;
        }
      } else if (ch === HASH && text.charCodeAt(k - 1) === SPACE) break;
    }
    let e = k;
    while (text.charCodeAt(e - 1) === SPACE) e--;
    // `a : b` (a blank before the colon) is for js-yaml.
    if (colon && e !== k) return NOT_PLAIN;
    this.#at = colon ? k : eol;
    return colon ? plainKey(text, i, e) : resolvePlainScalar(text.slice(i, e));
  }

  /** The value after `key:` (`i` is just after the colon): on this line, or pending. */
  #value(mapping: Mapping, key: string, indent: number, i: number, eol: number, depth: number): boolean {
    if (key === '__proto__' || Object.hasOwn(mapping, key)) return false;
    const text = this.#text;
    while (i < eol && text.charCodeAt(i) === SPACE) i++;
    if (i === eol || text.charCodeAt(i) === HASH) {
      mapping[key] = null;
      this.#pend(mapping, key, indent, true);
      return true;
    }
    const c = text.charCodeAt(i);
    let value: unknown;
    if (c === OPEN_SQUARE || c === OPEN_CURLY) value = this.#flow(i, eol, depth);
    else if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) value = this.#quoted(i, eol);
    else {
      value = this.#keyOrScalar(i, eol);
      // `a: b: c`: a mapping on a key's line is an error js-yaml reports.
      if (text.charCodeAt(this.#at) === COLON) return false;
    }
    if (value === NOT_PLAIN || !this.#restIsBlank(this.#at, eol)) return false;
    mapping[key] = value;
    return true;
  }

  #pend(node: unknown[] | Mapping, key: string | number, indent: number, inMapping: boolean): void {
    this.#pendingNode = node;
    this.#pendingKey = key;
    this.#pendingIndent = indent;
    this.#pendingInMapping = inMapping;
  }

  /** A quoted scalar at `i` that ends on its line, without escapes; `#at` is left after its closing quote. */
  #quoted(i: number, eol: number): unknown {
    const text = this.#text;
    const quote = text.charCodeAt(i);
    let doubled = false;
    for (let k = i + 1; k < eol; k++) {
      const c = text.charCodeAt(k);
      if (c === BACKSLASH && quote === DOUBLE_QUOTE) return NOT_PLAIN;
      if (c !== quote) continue;
      // '' in a single-quoted scalar is one quote.
      if (quote === SINGLE_QUOTE && text.charCodeAt(k + 1) === SINGLE_QUOTE) {
        doubled = true;
        k++;
        continue;
      }
      this.#at = k + 1;
      const s = text.slice(i + 1, k);
      return doubled ? s.replaceAll("''", "'") : s;
    }
    return NOT_PLAIN;
  }

  /**
   * A flow collection at `i` that closes on its line: entries are quoted or plain scalars or
   * collections, mapping entries are `key: value`. Empty entries, trailing commas, `{a}`, pairs in
   * sequences, `:` in plain scalars and comments inside are for js-yaml. `depth` is the nesting
   * scan's count before the first bracket. `#at` is left after the closing bracket.
   */
  #flow(i: number, eol: number, depth: number): unknown {
    const text = this.#text;
    const stack: Array<{ node: unknown[] | Mapping; key: string }> = [];
    let node: unknown[] | Mapping = text.charCodeAt(i) === OPEN_SQUARE ? [] : {};
    let key = '';
    let empty = true;
    if (depth + 1 > this.#maxDepth) return NOT_PLAIN;
    i++;
    for (;;) {
      while (i < eol && text.charCodeAt(i) === SPACE) i++;
      if (i >= eol) return NOT_PLAIN;
      let c = text.charCodeAt(i);
      const seq = Array.isArray(node);
      let value: unknown;
      if (empty && c === (seq ? CLOSE_SQUARE : CLOSE_CURLY)) {
        value = node;
        i++;
      } else {
        if (!seq) {
          // The key, then `: `.
          const k = this.#flowScalar(i, eol, true);
          if (k === NOT_PLAIN || text.charCodeAt(this.#at) !== COLON || text.charCodeAt(this.#at + 1) !== SPACE) return NOT_PLAIN;
          key = typeof k === 'string' ? k : String(k);
          if (key === '__proto__' || Object.hasOwn(node, key)) return NOT_PLAIN;
          i = this.#at + 2;
          while (i < eol && text.charCodeAt(i) === SPACE) i++;
          c = text.charCodeAt(i);
        }
        if (c === OPEN_SQUARE || c === OPEN_CURLY) {
          stack.push({ node, key });
          if (depth + stack.length + 1 > this.#maxDepth || stack.length >= MAX_FLOW_DEPTH) return NOT_PLAIN;
          node = c === OPEN_SQUARE ? [] : {};
          empty = true;
          i++;
          continue;
        }
        value = this.#flowScalar(i, eol, false);
        if (value === NOT_PLAIN) return NOT_PLAIN;
        i = this.#at;
        if (seq) (node as unknown[]).push(value);
        else (node as Mapping)[key] = value;
        value = undefined;
      }
      // After an entry (or a collection just closed): `,` or the closing bracket, as often as collections close.
      for (;;) {
        if (value !== undefined) {
          // A collection closed: it is the entry of the one around it, or the whole value.
          const parent = stack.pop();
          if (parent === undefined) {
            this.#at = i;
            return value;
          }
          if (Array.isArray(parent.node)) parent.node.push(value);
          else parent.node[parent.key] = value;
          node = parent.node;
          key = parent.key;
        }
        while (i < eol && text.charCodeAt(i) === SPACE) i++;
        c = text.charCodeAt(i);
        if (c === COMMA) {
          i++;
          empty = false;
          // A trailing comma (`[a, ]`) is for js-yaml.
          while (i < eol && text.charCodeAt(i) === SPACE) i++;
          const after = text.charCodeAt(i);
          if (after === CLOSE_SQUARE || after === CLOSE_CURLY || after === COMMA) return NOT_PLAIN;
          break;
        }
        if (c !== (Array.isArray(node) ? CLOSE_SQUARE : CLOSE_CURLY)) return NOT_PLAIN;
        value = node;
        i++;
      }
    }
  }

  /**
   * A quoted or plain scalar in a flow collection. A plain one ends at `,`, `]`, `}` or (a key)
   * at `: `; `#at` is left there, after trailing blanks. Keys come back as strings.
   */
  #flowScalar(i: number, eol: number, isKey: boolean): unknown {
    const text = this.#text;
    const c = text.charCodeAt(i);
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const value = this.#quoted(i, eol);
      if (value === NOT_PLAIN) return NOT_PLAIN;
      let k = this.#at;
      while (k < eol && text.charCodeAt(k) === SPACE) k++;
      // `"a" : b` (a blank before a key's colon) is for js-yaml.
      if (text.charCodeAt(k) === COLON && (!isKey || k !== this.#at)) return NOT_PLAIN;
      this.#at = k;
      return value;
    }
    if (!plainStart(c, text.charCodeAt(i + 1), true)) return NOT_PLAIN;
    let k = i + 1;
    for (; k < eol; k++) {
      const ch = text.charCodeAt(k);
      if (ch === COMMA || ch === CLOSE_SQUARE || ch === CLOSE_CURLY) break;
      if (ch === OPEN_SQUARE || ch === OPEN_CURLY) return NOT_PLAIN;
      if (ch === COLON) {
        if (!isKey || text.charCodeAt(k + 1) !== SPACE) return NOT_PLAIN;
        break;
      }
      if (ch === HASH && text.charCodeAt(k - 1) === SPACE) return NOT_PLAIN;
    }
    if (k === eol) return NOT_PLAIN;
    let e = k;
    while (text.charCodeAt(e - 1) === SPACE) e--;
    if (isKey && text.charCodeAt(k) === COLON && e !== k) return NOT_PLAIN;
    this.#at = k;
    return isKey ? plainKey(text, i, e) : resolvePlainScalar(text.slice(i, e));
  }
}
