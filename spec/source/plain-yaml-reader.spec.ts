import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { manifestNestingExceeded } from '../../lib/source/manifest-limits.js';
import { NOT_PLAIN, plainAlphabet, readPlainDocument } from '../../lib/source/plain-yaml-reader.js';
import { jsYaml } from '../../lib/source/yaml-core-scalars.js';
import { plainDocuments } from '../../lib/source/yaml-documents.js';
import { generatedDocument, mutatedDocument, PLAIN_SCALARS } from '../helpers/generated-yaml.js';
import { deepBlockService, deepFlowService, slowConfigMap } from '../helpers/hostile-manifests.js';
import { exactlyEqual } from '../helpers/exactly-equal.js';
import { SeededRandom } from '../helpers/seeded-random.js';

// The plain reader must give, for every document it reads, exactly what js-yaml gives with the
// same schema, and leave to js-yaml every document js-yaml refuses. These specs hold it to that
// over the repository's manifests and over generated and mutated documents.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Reads one document both ways; true when the plain reader read it (and then agreed with js-yaml). */
function agrees(t: ExecutionContext, doc: string, label: string): boolean {
  const plain = plainAlphabet(doc) ? readPlainDocument(doc, 0, doc.length, Infinity) : NOT_PLAIN;
  if (plain === NOT_PLAIN) return false;
  let expected: unknown;
  try {
    expected = jsYaml().load(doc, { schema: jsYaml().schema }) ?? null;
  } catch (err) {
    t.fail(`${label}: the plain reader read a document js-yaml refuses (${(err as Error).message.split('\n')[0]}): ${JSON.stringify(doc)}`);
    return true;
  }
  if (!exactlyEqual(plain, expected)) t.fail(`${label}: ${JSON.stringify(doc)}\n plain:   ${JSON.stringify(plain)}\n js-yaml: ${JSON.stringify(expected)}`);
  return true;
}

/** The documents of a stream, split at lines starting `---`. */
function documentsOf(text: string): string[] {
  return text.split(/^(?=---(?:[ \t\r\n]|$))/m);
}

function serviceAndSlice(i: number, style: 'flow' | 'block'): string {
  if (style === 'flow') {
    return [
      'apiVersion: v1',
      'kind: Service',
      `metadata: {name: svc-${i}, namespace: bench}`,
      'spec:',
      '  type: ClusterIP',
      `  clusterIP: 127.100.1.${i}`,
      '  ports: [{name: tcp, protocol: TCP, port: 8080, targetPort: tcp}]',
      '---',
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      `metadata: {name: svc-${i}-0, namespace: bench, labels: {kubernetes.io/service-name: svc-${i}}}`,
      'addressType: IPv4',
      'ports: [{name: tcp, protocol: TCP, port: 9000}]',
      'endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}, {addresses: ["127.0.0.2"], conditions: {ready: false}}]',
    ].join('\n');
  }
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: svc-${i}`,
    '  labels: {}',
    'spec:',
    '  selector:',
    `    app: svc-${i}`,
    '  ports:',
    '  - name: "http"',
    '    port: 80',
    "    targetPort: '8080'",
    '---',
    'apiVersion: discovery.k8s.io/v1',
    'kind: EndpointSlice',
    'metadata:',
    `  name: svc-${i}-0`,
    'ports:',
    '- name: http',
    '  port: 8080',
    'endpoints:',
    '- addresses:',
    '  - 10.1.0.1',
    '  conditions:',
    '    ready: true # comment',
    '  nodeName: ~',
  ].join('\n');
}

test('manifests as generators and kubectl write them are read by the plain reader, as js-yaml reads them', (t) => {
  for (const style of ['flow', 'block'] as const) {
    for (const doc of documentsOf(serviceAndSlice(7, style))) t.true(agrees(t, doc, style), `${style}: ${doc}`);
  }
});

test('the examples and the manifests written in specs read the same, and most of them by the plain reader', (t) => {
  const texts: Array<[string, string]> = [];
  for (const dir of ['examples/hostnames', 'examples/kubernetes']) {
    for (const file of fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.yaml'))) texts.push([`${dir}/${file}`, fs.readFileSync(path.join(ROOT, dir, file), 'utf8')]);
  }
  // Template literals of the specs that hold a manifest, their substitutions made plain words.
  const specs = path.join(ROOT, 'spec');
  for (const file of fs.readdirSync(specs, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    const source = fs.readFileSync(path.join(specs, file), 'utf8');
    for (const m of source.matchAll(/`([^`]*apiVersion:[^`]*)`/g)) texts.push([`spec/${file}`, m[1]!.replace(/\$\{[^}]*\}/g, 'x1').replaceAll('\\n', '\n')]);
  }
  let read = 0;
  let documents = 0;
  for (const [label, text] of texts) {
    for (const doc of documentsOf(text)) {
      documents++;
      if (agrees(t, doc, label)) read++;
    }
  }
  t.true(texts.length > 30, `${texts.length} manifests`);
  t.true(read > documents / 2, `${read} of ${documents} documents read by the plain reader`);
});

test('generated documents, and mutations of them, read as js-yaml reads them', (t) => {
  const r = new SeededRandom(20261207);
  let read = 0;
  let mutatedRead = 0;
  const rounds = 4000;
  for (let i = 0; i < rounds; i++) {
    const doc = generatedDocument(r);
    if (agrees(t, doc, `generated #${i}`)) read++;
    for (let m = 0; m < 3; m++) if (agrees(t, mutatedDocument(r, doc), `mutated #${i}.${m}`)) mutatedRead++;
  }
  // Enough of both are read by the plain reader for the comparison to mean something.
  t.true(read > rounds * 0.5, `${read} of ${rounds} generated documents read`);
  t.true(mutatedRead > rounds * 0.3, `${mutatedRead} of ${3 * rounds} mutated documents read`);
});

test('scalars mean what they mean to js-yaml as values, keys and flow entries, quoted or not', (t) => {
  for (const s of PLAIN_SCALARS) {
    for (const doc of [`v: ${s}\n`, `${s}: v\n`, `- ${s}\n`, `l: [${s}]\n`, `m: {${s}: ${s}}\n`, `q: '${s.replaceAll("'", "''")}'\n`, `"${s.replaceAll('"', '')}": v\n`]) agrees(t, doc, s);
  }
  // A quoted key is not what the plain key of the same text means, whichever comes first.
  for (const doc of ['"0x1F": a\n0x1F: b\n', '0x1F: b\n"0x1F": a\n', 'abc: 1\naxc: 2\nacc: 3\n', '1: a\n"1": b\n', "'it''s': 1\n"]) agrees(t, doc, doc);
  t.is(readPlainDocument('a: 1\na: 2\n', 0, 10, Infinity), NOT_PLAIN);
});

test('a file read by the plain reader would have passed the nesting scan at the same limit', (t) => {
  const r = new SeededRandom(7);
  let within = 0;
  let over = 0;
  const texts = [deepBlockService(30), deepFlowService(30), slowConfigMap(3), `a:\n${'- '.repeat(20)}x\n`];
  for (let i = 0; i < 1500; i++) texts.push(generatedDocument(r, 8));
  for (const text of texts) {
    for (let limit = 1; limit <= 12; limit++) {
      const plain = plainDocuments(text, limit);
      if (plain === undefined) continue;
      within++;
      t.is(manifestNestingExceeded(text, limit), undefined, `limit ${limit}: ${text}`);
    }
    if (plainDocuments(text, 1) === undefined && manifestNestingExceeded(text, 1) !== undefined) over++;
  }
  t.true(within > 1000 && over > 100, `${within} read within a limit, ${over} over it`);
});

test('deep and slow hostile files are left to the nesting scan and js-yaml; without a limit, deep blocks need no recursion', (t) => {
  // 100,000 nested flow mappings and 3,000 nested block sequences go over the limit; 90-deep flow
  // sequences within it are left to js-yaml.
  t.is(plainDocuments(deepFlowService(100_000), 100), undefined);
  t.is(plainDocuments(deepBlockService(3000), 100), undefined);
  t.is(plainDocuments(slowConfigMap(100), 100), undefined);
  // 3,000 block sequences, one in another: read with the reader's own stack.
  const lines = Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}-`);
  lines.push(`${' '.repeat(3000)}- x`);
  let value = readPlainDocument(lines.join('\n'), 0, lines.join('\n').length, Infinity);
  let depth = 0;
  while (Array.isArray(value)) {
    value = value[0];
    depth++;
  }
  t.is(depth, 3001);
  t.is(value, 'x');
});
