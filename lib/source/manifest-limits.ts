/**
 * Bounds on a manifest file, checked before it is parsed.
 *
 * Both YAML readers recurse once per nesting level, and their cost grows faster than the text:
 * a 4.5 MB Service whose spec is 3,000 nested block sequences kept js-yaml busy for seconds (40 s
 * on a loaded 2-core node) before overflowing the stack, and 100,000 nested flow mappings
 * (500 KB) cost about 5 s. No manifest the proxy reads needs more than a few dozen levels (a
 * Service is 6 deep; a CRD's schema in the same directory perhaps 40), so a file nested deeper
 * than maxDepth, or larger than maxBytes, is refused whole, with the limit in the reason, and
 * never reaches a reader. The scan is one pass over the characters (34 ms for a 1.9 MB file of
 * 10,000 Services on a loaded 2-core node; a hostile file stops it early). The plain reader
 * (plain-yaml-reader.ts) makes the same count as it reads, so only a file it leaves to the other
 * readers is scanned first. Cost within the limits is bounded by reading files off the main thread
 * (manifest-parse-thread.ts).
 */
export interface ManifestLimits {
  /** Largest file read, in bytes. */
  readonly maxBytes: number;
  /** Deepest nesting of block and flow collections. */
  readonly maxDepth: number;
}

/**
 * 16 MiB: six times the 2.5 MB of a file holding 10,000 Services, while a Kubernetes object is
 * at most 1.5 MiB (etcd's limit) and an API request body 3 MiB.
 */
export const DEFAULT_MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Well above any real object, well below what makes the readers recurse for seconds. */
export const DEFAULT_MAX_MANIFEST_DEPTH = 100;
export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = { maxBytes: DEFAULT_MAX_MANIFEST_BYTES, maxDepth: DEFAULT_MAX_MANIFEST_DEPTH };

/** Why a file of `bytes` bytes is not read, or undefined when it may be. */
export function manifestSizeExceeded(bytes: number, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): string | undefined {
  if (bytes <= limits.maxBytes) return undefined;
  return `file is ${bytes} bytes, over the limit of ${limits.maxBytes} bytes for a manifest; not parsed`;
}

/** Where a text goes over a limit: the document (1-based), and a one-line reason. */
export interface LimitExceeded {
  readonly document: number;
  readonly reason: string;
}

/** The first limit the text goes over; undefined when within. */
export function manifestLimitExceeded(text: string, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): LimitExceeded | undefined {
  return manifestTextSizeExceeded(text, limits) ?? manifestNestingExceeded(text, limits.maxDepth);
}

/** The size limit, for a text already read. */
export function manifestTextSizeExceeded(text: string, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): LimitExceeded | undefined {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most texts need no count.
  if (text.length * 3 <= limits.maxBytes) return undefined;
  const size = manifestSizeExceeded(Buffer.byteLength(text, 'utf8'), limits);
  return size ? { document: 1, reason: size } : undefined;
}

const SPACE = 0x20;
const TAB = 0x09;
const NEWLINE = 0x0a;
const CR = 0x0d;
const HASH = 0x23;
const DASH = 0x2d;
const QUESTION = 0x3f;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;
const BACKSLASH = 0x5c;
const PIPE = 0x7c;
const GREATER = 0x3e;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}

function isLineEnd(c: number): boolean {
  return c === NEWLINE || c === CR || Number.isNaN(c);
}

/**
 * An estimate of the nesting depth, line by line: the block collections open at a line (the
 * distinct indentations above it, plus compact `- - ` and `? ` entries on it) plus the flow
 * collections (`[`, `{`) open at each character. Quoted scalars, comments and block scalars
 * (`|`, `>`) are skipped, so that brackets in a string or an embedded JSON file do not count. It
 * may count a level more than a reader would (a multi-line plain scalar indented deeper than its
 * key), never fewer for the deep nesting that costs: every level of that needs its own
 * indentation, entry marker or bracket.
 */
export function manifestNestingExceeded(text: string, maxDepth: number): LimitExceeded | undefined {
  const n = text.length;
  const indents: number[] = [];
  let flow = 0;
  let quote = 0;
  /** The indentation of the line that opened a block scalar; -1 when not in one. */
  let scalarParent = -1;
  let document = 1;
  let seenContent = false;
  let line = 0;
  let pos = 0;
  const over = (depth: number): LimitExceeded => ({
    document,
    reason: `nesting deeper than ${maxDepth} levels (${depth} at line ${line}), over the limit for a manifest; not parsed`,
  });
  while (pos < n) {
    line++;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    let i = pos;
    pos = end + 1;
    let indent = 0;
    while (i < end && text.charCodeAt(i) === SPACE) {
      i++;
      indent++;
    }
    const first = text.charCodeAt(i);
    const blankLine = i >= end || first === CR || (first === TAB && text.slice(i, end).trim() === '');
    if (scalarParent >= 0) {
      if (blankLine || indent > scalarParent) continue;
      scalarParent = -1;
    }
    if (quote === 0 && flow === 0) {
      if (blankLine || first === HASH) continue;
      // `---` or `...` at the start of a line ends a document (a `---` before any content opens the first).
      if (indent === 0 && (text.startsWith('---', i) || text.startsWith('...', i)) && (i + 3 >= end || isBlank(text.charCodeAt(i + 3)) || isLineEnd(text.charCodeAt(i + 3)))) {
        // `---` opens a document (the first one only if content came before it); `...` closes one.
        if (text.charCodeAt(i) !== DASH || seenContent) document++;
        seenContent = false;
        indents.length = 0;
        i += 3;
      } else {
        seenContent = true;
        while (indents.length > 0 && indents[indents.length - 1]! > indent) indents.pop();
        if (indents.length === 0 || indents[indents.length - 1]! < indent) indents.push(indent);
        if (indents.length > maxDepth) return over(indents.length);
      }
    }
    let markers = 0;
    let tokenStart = true;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (quote === DOUBLE_QUOTE) {
        if (c === BACKSLASH) i++;
        else if (c === DOUBLE_QUOTE) quote = 0;
        continue;
      }
      if (quote === SINGLE_QUOTE) {
        if (c === SINGLE_QUOTE) {
          if (text.charCodeAt(i + 1) === SINGLE_QUOTE) i++;
          else quote = 0;
        }
        continue;
      }
      if (isBlank(c) || c === CR) continue;
      if (c === HASH) {
        const before = i > 0 ? text.charCodeAt(i - 1) : NEWLINE;
        if (isBlank(before) || before === NEWLINE) break;
      }
      // Most characters are inside plain scalars: they read neither neighbour unless they may end one.
      if (!tokenStart) {
        // A plain scalar goes on until `: ` (block) or a flow indicator.
        if (c === COLON) {
          const next = text.charCodeAt(i + 1);
          if (isBlank(next) || isLineEnd(next) || (flow > 0 && (next === COMMA || next === CLOSE_SQUARE || next === CLOSE_CURLY))) tokenStart = true;
        } else if (flow > 0 && (c === COMMA || c === CLOSE_SQUARE || c === CLOSE_CURLY)) {
          if (c !== COMMA) flow--;
          tokenStart = true;
        }
        continue;
      }
      const next = text.charCodeAt(i + 1);
      if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
        quote = c;
        tokenStart = false;
      } else if (c === OPEN_SQUARE || c === OPEN_CURLY) {
        flow++;
        const depth = indents.length + markers + flow;
        if (depth > maxDepth) return over(depth);
      } else if (c === CLOSE_SQUARE || c === CLOSE_CURLY) {
        if (flow > 0) flow--;
      } else if (c === COMMA || c === COLON) {
        // Still at the start of a token.
      } else if (flow === 0 && (c === DASH || c === QUESTION) && (isBlank(next) || isLineEnd(next))) {
        markers++;
        if (indents.length + markers > maxDepth) return over(indents.length + markers);
      } else if (flow === 0 && (c === PIPE || c === GREATER)) {
        scalarParent = indent;
        break;
      } else {
        tokenStart = false;
      }
    }
  }
  return undefined;
}
