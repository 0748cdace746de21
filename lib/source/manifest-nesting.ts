/**
 * The nesting scan of the manifest limits (manifest-limits.ts): how deep a manifest's collections go, estimated in one
 * pass over the characters, before a reader recurses into them.
 */

/** Where a text goes over a limit: the document (1-based), and a one-line reason. */
export interface LimitExceeded {
  readonly document: number;
  readonly reason: string;
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
