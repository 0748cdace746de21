import type { SeededRandom } from './seeded-random.js';

/**
 * Random YAML documents for differential specs: value trees written in the styles manifests come
 * in (block mappings and sequences at various indentations, compact `- key:` entries, one-line
 * flow collections, plain and quoted scalars, comments and blank lines), and mutations of them
 * (a character inserted or removed, a line moved, duplicated or re-indented).
 */

/** Plain scalars: every form of the core schema, their near misses, and characters that matter to a reader. */
export const PLAIN_SCALARS = [
  'a',
  'web',
  'svc-00001',
  'kubernetes.io/service-name',
  'TCP',
  '127.0.0.1',
  '10.96.0.10',
  'fd00::1',
  '1',
  '+1',
  '-1',
  '0',
  '-0',
  '00',
  '017',
  '0o17',
  '0x1F',
  '-0x1F',
  '0b101',
  '1_000',
  '1.5',
  '.5',
  '5.',
  '-.5',
  '1e3',
  '1.5e-3',
  '1e',
  '123456789012345678901234567890',
  '.inf',
  '-.Inf',
  '.NaN',
  'true',
  'True',
  'FALSE',
  'tRue',
  'yes',
  'null',
  'Null',
  'NULL',
  '~',
  '2024-01-01',
  '12:30',
  'a:b',
  'http://x:80/y',
  'x#y',
  'a b  c',
  '-a',
  '--',
  'a]',
  'a}',
  'a,b',
  'a[0]',
  "it's",
  'say "hi"',
  '<<',
  '=',
  'é',
  '日本',
  'constructor',
  'toString',
  '__proto__',
];

const KEYS = ['a', 'b', 'name', 'namespace', 'port', 'ports', 'x', 'abc', 'axc', '1', 'true', '0x1F', '1.0', 'a b', 'a:b', '-a', 'é', 'constructor', 'kubernetes.io/name'];

type Tree = string | { quoted: string } | Tree[] | { map: Array<[string, Tree]> };

function tree(r: SeededRandom, depth: number): Tree {
  const roll = r.int(10);
  if (depth <= 0 || roll < 4) return r.int(4) === 0 ? { quoted: r.pick([...PLAIN_SCALARS, '', ' a ', 'a: b', '# c', '[x]', "'", '"']) } : r.pick(PLAIN_SCALARS);
  if (roll < 6) return Array.from({ length: r.int(4) }, () => tree(r, depth - 1));
  const keys = new Set<string>();
  const n = r.int(5);
  for (let i = 0; i < n; i++) keys.add(r.pick(KEYS));
  return { map: [...keys].map((k) => [k, tree(r, depth - 1)]) };
}

function quote(r: SeededRandom, s: string): string {
  if (s.includes('"') || s.includes('\\') || r.int(2) === 0) return `'${s.replaceAll("'", "''")}'`;
  return `"${s}"`;
}

function scalar(r: SeededRandom, t: string | { quoted: string }): string {
  return typeof t === 'string' ? t : quote(r, t.quoted);
}

function isCollection(t: Tree): t is Tree[] | { map: Array<[string, Tree]> } {
  return Array.isArray(t) || (typeof t === 'object' && 'map' in t);
}

function flow(r: SeededRandom, t: Tree): string {
  if (Array.isArray(t)) return `[${t.map((v) => flow(r, v)).join(r.pick([', ', ',']))}]`;
  if (typeof t === 'object' && 'map' in t) return `{${t.map.map(([k, v]) => `${k}: ${flow(r, v)}`).join(', ')}}`;
  return scalar(r, t);
}

function comment(r: SeededRandom): string {
  return r.int(8) === 0 ? r.pick([' # c', ' #', ' # a: [b', '  # x']) : '';
}

/** `t` as block lines at `indent`; a collection that is empty, or chosen so, is written in flow style after its key. */
function block(r: SeededRandom, t: Tree, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent);
  const step = r.pick([1, 2, 2, 2, 4]);
  if (Array.isArray(t)) {
    for (const v of t) {
      if (isCollection(v) && !isEmpty(v) && r.int(4) !== 0) {
        if (!Array.isArray(v) && r.int(2) === 0) {
          // Compact: the mapping's first key on the entry's line.
          const sub: string[] = [];
          block(r, v, indent + 2, sub);
          sub[0] = `${pad}- ${sub[0]!.slice(indent + 2)}`;
          lines.push(...sub);
        } else {
          lines.push(`${pad}-${comment(r)}`);
          block(r, v, indent + step, lines);
        }
      } else lines.push(`${pad}- ${isCollection(v) ? flow(r, v) : scalar(r, v)}${comment(r)}`);
      if (r.int(10) === 0) lines.push(r.pick(['', `${pad}# note`, '# left', `${pad}   # deeper`]));
    }
    return;
  }
  if (typeof t === 'object' && 'map' in t) {
    for (const [k, v] of t.map) {
      const key = r.int(10) === 0 ? quote(r, k) : k;
      if (isCollection(v) && !isEmpty(v) && r.int(4) !== 0) {
        lines.push(`${pad}${key}:${comment(r)}`);
        // A sequence may sit at its key's indentation.
        block(r, v, Array.isArray(v) && r.int(2) === 0 ? indent : indent + step, lines);
      } else lines.push(`${pad}${key}: ${isCollection(v) ? flow(r, v) : scalar(r, v)}${comment(r)}`);
    }
    return;
  }
  lines.push(`${pad}${scalar(r, t)}`);
}

function isEmpty(t: Tree[] | { map: Array<[string, Tree]> }): boolean {
  return Array.isArray(t) ? t.length === 0 : t.map.length === 0;
}

/** One random document: a mapping or a sequence at its top, up to `depth` levels. */
export function generatedDocument(r: SeededRandom, depth = 4): string {
  let t = tree(r, depth);
  if (!isCollection(t) || isEmpty(t))
    t = {
      map: [
        ['kind', 'Service'],
        ['spec', t],
      ],
    };
  const lines: string[] = [];
  if (r.int(5) === 0) lines.push('# generated');
  block(r, t, r.int(6) === 0 ? 2 : 0, lines);
  return `${lines.join('\n')}${r.pick(['\n', '\n', '', '\n\n'])}`;
}

const MUTATION_CHARS = [
  ' ',
  ' ',
  '  ',
  ':',
  ': ',
  '-',
  '- ',
  '#',
  ' #',
  '"',
  "'",
  '[',
  ']',
  '{',
  '}',
  ',',
  '\n',
  'a',
  '0',
  '.',
  '!',
  '&',
  '*',
  '|',
  '>',
  '?',
  '%',
  '@',
  '\\',
  '\t',
  '\r',
  '~',
  '---\n',
];

/** `text` with one to three random edits. */
export function mutatedDocument(r: SeededRandom, text: string): string {
  for (let n = 1 + r.int(3); n > 0; n--) {
    const lines = text.split('\n');
    const i = r.int(lines.length);
    const at = r.int(text.length + 1);
    switch (r.int(6)) {
      case 0:
        text = text.slice(0, at) + r.pick(MUTATION_CHARS) + text.slice(at);
        break;
      case 1:
        text = text.slice(0, at) + text.slice(at + 1 + r.int(3));
        break;
      case 2:
        lines.splice(i, 0, lines[r.int(lines.length)]!);
        text = lines.join('\n');
        break;
      case 3:
        lines[i] = r.int(2) === 0 ? ` ${lines[i]}` : lines[i]!.replace(/^ {1,2}/, '');
        text = lines.join('\n');
        break;
      case 4: {
        const [line] = lines.splice(i, 1);
        lines.splice(r.int(lines.length + 1), 0, line!);
        text = lines.join('\n');
        break;
      }
      default:
        lines[i] = `${lines[i]}${r.pick(MUTATION_CHARS)}${r.pick(PLAIN_SCALARS)}`;
        text = lines.join('\n');
    }
  }
  return text;
}
