/**
 * What js-yaml reads differently from `yaml`, or what only `yaml` checks: a text with any of it
 * is read whole by `yaml`. A pattern may also match harmless text (`a : b`, a quoted `" *"`):
 * that only costs speed.
 */
const NOT_QUICK = [
  // Characters JavaScript takes for line ends or blanks (so `^` or `\\s` would see a line or a
  // blank that YAML does not), and byte order marks between documents.
  /[\u2028\u2029\uFEFF]/,
  // Directives (`%YAML`).
  /^%/m,
  // Explicit document ends, and `---` glued to text (js-yaml takes `---a: 1` as a document start).
  /^(?:\.\.\.|---[^ \t\r\n])/m,
];
/** A tag (`!`) or alias (`*`) where a node can start: `yaml` resolves tags and caps alias expansion. */
const TAG_OR_ALIAS = /(?:^|[\s[{,])[!*][^ \t\r\n[\]{},]/m;
/**
 * Keys that are not plain strings once read: explicit (`? `), flow collections (`[a, b]: c`), null
 * (`~: a`). Each reader turns them into a different string. The last two are found by oddKeyColon.
 */
const EXPLICIT_KEY = /(?:^|[\s[{,])\?(?:[ \t\r\n]|$)/m;

/**
 * Whether js-yaml may read the text (a leading byte order mark removed) as `yaml` would. The
 * patterns with a character of their own run only when the text has it, and the colon patterns are
 * one loop over the colons (on 10 files of 1,000 Services: about 50 → 10 ms of CPU).
 */
export function quickReadable(text: string): boolean {
  if (NOT_QUICK.some((pattern) => pattern.test(text))) return false;
  if ((text.includes('!') || text.includes('*')) && TAG_OR_ALIAS.test(text)) return false;
  if (text.includes('?') && EXPLICIT_KEY.test(text)) return false;
  return !oddKeyColon(text);
}

/**
 * Whether the text matches `/[\]}][ \t]*:(?:[ \t\r\n]|$)/m` (a flow collection as a key) or
 * `/(?:^|[\s[{,])(?:~|[Nn]ull|NULL)?[ \t]*:(?:[ \t\r\n]|$)/m` (an empty or null key), written as
 * one pass over the colons: the patterns try every character, this only the colons followed by a
 * blank. A spec holds it equal to the patterns.
 */
export function oddKeyColon(text: string): boolean {
  for (let i = text.indexOf(':'); i >= 0; i = text.indexOf(':', i + 1)) {
    const next = text.charCodeAt(i + 1);
    if (!(i + 1 === text.length || next === 0x20 || next === 0x09 || next === 0x0d || next === 0x0a || next === 0x2028 || next === 0x2029)) continue;
    if (i === 0) return true;
    const before = text.charCodeAt(i - 1);
    // A blank before the colon is the `[\s]` of the second pattern (or ends the first one's `[ \t]*`).
    if (before === 0x5d || before === 0x7d || nodeStart(before)) return true;
    if (before === 0x7e && (i === 1 || nodeStart(text.charCodeAt(i - 2)))) return true;
    if ((before === 0x6c || before === 0x4c) && i >= 4 && /^(?:[Nn]ull|NULL)$/.test(text.slice(i - 4, i)) && (i === 4 || nodeStart(text.charCodeAt(i - 5)))) return true;
  }
  return false;
}

/** `[\s[{,]`: JavaScript's blanks and line ends, and what opens or separates flow entries. */
function nodeStart(c: number): boolean {
  if (c === 0x5b || c === 0x7b || c === 0x2c) return true;
  if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return /\s/.test(String.fromCharCode(c));
}
