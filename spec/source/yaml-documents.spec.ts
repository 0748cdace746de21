import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { fullDocuments, parseYamlDocuments, plainDocuments, quickDocuments } from '../../lib/source/yaml-documents.js';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');

const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 8080}
  - name: dns
    protocol: UDP
    port: 53
`;

// Every plain scalar form of the YAML 1.2 core schema, and its near misses.
const SCALARS = [
  '1',
  '+1',
  '-1',
  '0',
  '-0',
  '00',
  '017',
  '0o17',
  '0O17',
  '0x1F',
  '0X1f',
  '-0x1F',
  '+0x1F',
  '0b101',
  '1_000',
  '1,000',
  '1.5',
  '.5',
  '5.',
  '-.5',
  '+.5',
  '1e3',
  '1E3',
  '1e+3',
  '1.5e-3',
  '-.5e3',
  '1e',
  '1e3.5',
  '123456789012345678901234567890',
  '.inf',
  '-.inf',
  '+.inf',
  '.Inf',
  '.INF',
  '.nan',
  '.NaN',
  '.NAN',
  '-.nan',
  'true',
  'True',
  'TRUE',
  'tRue',
  'false',
  'False',
  'FALSE',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'n',
  'null',
  'Null',
  'NULL',
  'nULL',
  '~',
  '',
  '2024-01-01',
  '2001-12-14t21:59:43.10-05:00',
  '12:30',
  '1:20:30',
  '"1"',
  "'1'",
  '"true"',
  '"\\u00e9\\x41\\t"',
  "'it''s'",
  '<<',
  '=',
  'a b c',
  'x#y',
  'x # comment',
];

// Stream shapes: document markers, comments, byte order marks, line endings, block and flow styles.
const STREAMS = [
  '',
  '\n',
  '# only a comment\n',
  '# c\n---\na: 1\n',
  '\n\n---\na: 1',
  'a: 1\n---\n',
  'a: 1\n---',
  '---\n---\n',
  '---',
  '--- # c\na: 1',
  '--- {a: 1}\n--- {b: 2}',
  '\uFEFF---\na: 1',
  '\uFEFFa: 1',
  '---\r\na: 1\r\n---\r\nb: 2\r\n',
  'a: 1\n--- \nb: 2\n',
  'a: 1\n---\t\nb: 2\n',
  '---\n# c\n',
  '  # indented comment\n---\na: 1',
  ' ---\na: 1',
  '---a: 1\n',
  'a: |\n  x\n---\nb: 1',
  'a: |\n  line1\n  line2\nb: >\n  folded\n  text\n\n  para\nc: |-\n  strip\nd: |+\n  keep\n\ne: 1\n',
  'k: |2\n   indented\n',
  'plain: multi\n  line\n  plain\n',
  'q: "multi\n  line"\n',
  "s: 'multi\n\n  line'\n",
  '- - a\n  - b\n- c: d\n  e: f\n',
  '{a: [1, 2, {b: c}], d: e}\n',
  'a:\n- 1\n-\n- ~\n',
  'empty:\n',
  'x: {}\ny: []\n',
  'x: 日本語\n',
  'a: b\r\nc: |\r\n  d\r\n  e\r\n',
  '\u00a0a: 1\n---\nb: 2\n',
  '\u00a0\n---\nb: 2\n',
  'a: x\u2028---\nb: 1\n',
  'a: 1\n\uFEFF---\nb: 2\n',
  'a: &\u00a0x 1\nb: *\u00a0x\n',
  'true: x\n1: y\n1.0: z\n0x1F: w\n',
  '__proto__: {a: 1}\nb: 2\n',
  'a: &x 1\nb: 2\n',
  'a: b#c\n',
  'a:b\n',
  'plain\n',
  '|\n  top block\n',
  // What only `yaml` reads as before: tags, aliases, directives, odd keys.
  'a: !!str 1\n',
  'a: !!float 1\n',
  'a: !foo x\n',
  'a: &x [1]\nb: *x\n',
  '%YAML 1.2\n---\na: 1\n',
  'a: 1\n...\nb: 2\n',
  '? a\n: b\n',
  '~: a\n',
  'null: a\n',
  '{: a}\n',
  'a : b\n',
  // Broken documents, alone or between good ones.
  'a: 1\na: 2\n',
  'a: {b: c, b: d}\n',
  '1: a\n"1": b\n',
  'a: [1, 2\n',
  'a: b\n  c: d\n',
  '- a\nb: c\n',
  'a:\tb\n',
  'a: "x"y\n',
  'a: 1\n---\nkind: [1, 2\nx: y\n---\nb: 2\n',
  'a: "unterminated\n---\nb: 1\n',
];

test('every scalar form means what `yaml` reads it as', (t) => {
  for (const scalar of SCALARS) {
    const text = `v: ${scalar}\nl: [${scalar}]\n`;
    t.deepEqual(parseYamlDocuments(text), fullDocuments(text), text);
  }
});

test('digits and dotted texts, read by the plain reader without patterns, mean what `yaml` reads them as', (t) => {
  const texts = ['0', '007', '123456789012345', '1234567890123456', '9007199254740993', '1.2.3', '127.0.0.1', '1..2', '.1.', '1.2e3.4', '0.0', '1.', '10.0.0.01', '1.2.3.4.5'];
  for (const scalar of texts) {
    const text = `v: ${scalar}\nl: [${scalar}]\n`;
    t.deepEqual(plainDocuments(text, 100), fullDocuments(text), text);
  }
});

test('scalars of the core schema are read by js-yaml, not handed over', (t) => {
  t.deepEqual(quickDocuments('a: -0x1F\nb: 0o17\nc: -.5\nd: .NaN\ne: True\nf: ~\ng: 0b101\n'), [{ value: { a: '-0x1F', b: 15, c: -0.5, d: NaN, e: true, f: null, g: '0b101' } }]);
});

test('every stream shape gives the documents `yaml` gives, numbered alike', (t) => {
  for (const text of STREAMS) t.deepEqual(parseYamlDocuments(text), fullDocuments(text), JSON.stringify(text));
});

test('random streams of YAML fragments give the documents `yaml` gives', (t) => {
  // A fixed seed: the same few thousand streams every run, about 40% of them read by js-yaml.
  let seed = 1;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pick = <T>(a: readonly T[]): T => a[random(a.length)]!;
  const atoms = [
    'a',
    'key',
    '1',
    '-1',
    '0x1F',
    '.5',
    'true',
    'null',
    '~',
    '',
    '"q"',
    "'s'",
    '"a\\nb"',
    'x y',
    'x #c',
    '-',
    '---',
    '...',
    ':',
    '?',
    ',',
    '[',
    ']',
    '{',
    '}',
    '|',
    '>',
    '&a',
    '*a',
    '!t',
    '%',
    '#',
    '"',
    "'",
    '\t',
    '\u00a0',
    'é',
    '\r',
  ];
  const line = (): string => {
    const indent = ' '.repeat(pick([0, 0, 0, 1, 2, 2, 4]));
    switch (random(10)) {
      case 0:
        return `${indent}- ${pick(atoms)}`;
      case 1:
        return `${indent}${pick(atoms)}:`;
      case 2:
        return pick(['---', '--- ', '---\t#c', '...', '# c', '', '--- |', '--- {a: 1}', '---a']);
      case 3:
        return `${indent}${pick(atoms)}: [${pick(atoms)}, ${pick(atoms)}]`;
      case 4:
        return `${indent}${pick(atoms)}: {${pick(atoms)}: ${pick(atoms)}}`;
      case 5:
        return `${indent}${pick(atoms)}: ${pick(['|', '|-', '>', '"multi', "'multi", '[1,', '{a: 1,'])}`;
      case 6:
        return `${indent}  ${pick(atoms)} ${pick(atoms)}`;
      default:
        return `${indent}${pick(atoms)}: ${pick(atoms)}${pick(['', '', pick(atoms)])}`;
    }
  };
  let quick = 0;
  for (let i = 0; i < 3000; i++) {
    const text = Array.from({ length: 1 + random(8) }, line).join(pick(['\n', '\n', '\r\n'])) + pick(['\n', '']);
    if (quickDocuments(text)) quick++;
    const same = isDeepStrictEqual(parseYamlDocuments(text), fullDocuments(text));
    if (!same) t.deepEqual(parseYamlDocuments(text), fullDocuments(text), JSON.stringify(text));
  }
  t.true(quick > 600, `only ${quick} of 3000 streams were read by js-yaml`);
});

test('plain manifest streams and the examples are read by js-yaml', (t) => {
  const stream = `# generated\n---\n${SERVICE}---\n---\n${SERVICE.replace('web', 'api')}`;
  const quick = quickDocuments(stream);
  t.deepEqual(quick, fullDocuments(stream));
  t.is(quick?.length, 3);
  for (const dir of fs.readdirSync(EXAMPLES)) {
    for (const file of fs.readdirSync(path.join(EXAMPLES, dir)).filter((f) => f.endsWith('.yaml'))) {
      const text = fs.readFileSync(path.join(EXAMPLES, dir, file), 'utf8');
      t.not(quickDocuments(text), undefined, `${dir}/${file}`);
      t.deepEqual(parseYamlDocuments(text), fullDocuments(text), `${dir}/${file}`);
    }
  }
});

test('a stream with tags, aliases, directives or odd keys is handed to `yaml`', (t) => {
  for (const text of ['a: !!str 1\n', 'a: &x [1]\nb: *x\n', '%YAML 1.2\n---\na: 1\n', 'a: 1\n...\n', '---a: 1\n', '[a]: b\n', '{a: 1}: b\n', '? a\n: b\n', '~: a\n']) {
    t.is(quickDocuments(`${SERVICE}---\n${text}`), undefined, text);
  }
});

test('a broken document is reported by `yaml` with its line, its neighbours still read', (t) => {
  const text = `${SERVICE}---\nkind: [1, 2\nx: y\n---\n${SERVICE}`;
  t.is(quickDocuments(text), undefined);
  const docs = parseYamlDocuments(text);
  t.is(docs.length, 3);
  t.true('value' in docs[0]! && 'value' in docs[2]!);
  t.regex((docs[1] as { error: string }).error, /line 14, column 1$/);
});
