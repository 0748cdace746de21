import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { DEFAULT_MAX_MANIFEST_DEPTH, manifestLimitExceeded, manifestSizeExceeded } from '../../lib/source/manifest-limits.js';
import { parseManifest } from '../../lib/source/manifest-parser.js';
import { deepBlockService, deepFlowService } from '../helpers/hostile-manifests.js';

test('refuses block and flow nesting over the limit, naming the limit, the document and the line', (t) => {
  const block = manifestLimitExceeded(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n${deepBlockService(3000)}`);
  t.is(block?.document, 2);
  t.regex(block!.reason, /^nesting deeper than 100 levels \(101 at line \d+\), over the limit for a manifest; not parsed$/);
  const flow = manifestLimitExceeded(deepFlowService(100_000));
  t.is(flow?.document, 1);
  t.regex(flow!.reason, /nesting deeper than 100 levels \(101 at line 4\)/);
  // Compact nesting on one line counts too.
  t.truthy(manifestLimitExceeded(`a:\n${'- '.repeat(150)}x\n`));
  t.truthy(manifestLimitExceeded(`a: ${'['.repeat(150)}${']'.repeat(150)}\n`));
});

test('the limit is not reached by nesting just under it, nor by brackets in strings, comments and block scalars', (t) => {
  t.is(manifestLimitExceeded(deepFlowService(DEFAULT_MAX_MANIFEST_DEPTH - 5)), undefined);
  t.is(manifestLimitExceeded(deepBlockService(DEFAULT_MAX_MANIFEST_DEPTH - 10)), undefined);
  const brackets = '['.repeat(500);
  const text = [
    'apiVersion: v1',
    'kind: ConfigMap',
    `metadata: {name: a, annotations: {x: "${brackets}\\"${brackets}", y: '${brackets}''${brackets}'}}`,
    `# ${brackets}`,
    'data:',
    `  plain: a${brackets}`,
    `  quoted: "${brackets}`,
    `    ${brackets}"`,
    '  json: |',
    ...Array.from({ length: 200 }, (_, i) => `${' '.repeat(4 + i)}{"k": [${brackets}`),
    '  after: 1',
    `  list: [a, "${brackets}", '${brackets}', {b: "]]]"}]`,
  ].join('\n');
  t.is(manifestLimitExceeded(text, { maxBytes: 1e9, maxDepth: 10 }), undefined);
});

test('every manifest under examples/ is well within the limit', (t) => {
  const root = path.resolve('examples');
  const files = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ya?ml|json)$/.test(f));
  t.true(files.length > 0);
  for (const f of files) t.is(manifestLimitExceeded(fs.readFileSync(path.join(root, f), 'utf8'), { maxBytes: 1e9, maxDepth: 20 }), undefined, f);
});

test('refuses a file over the size limit without parsing it', (t) => {
  t.is(manifestSizeExceeded(100, { maxBytes: 100, maxDepth: 100 }), undefined);
  t.is(manifestSizeExceeded(101, { maxBytes: 100, maxDepth: 100 }), 'file is 101 bytes, over the limit of 100 bytes for a manifest; not parsed');
  const entries = parseManifest('apiVersion: v1\nkind: Service\nmetadata: {name: é}\n', 'a.yaml', { maxBytes: 40, maxDepth: 100 });
  t.deepEqual(entries, [{ document: 1, type: 'rejected', object: undefined, field: '', reason: 'file is 50 bytes, over the limit of 40 bytes for a manifest; not parsed' }]);
});

test('parseManifest refuses a hostile file at once, as one rejected entry', (t) => {
  const entries = parseManifest(deepBlockService(3000), 'deep.yaml');
  t.is(entries.length, 1);
  t.like(entries[0], { type: 'rejected', document: 1, object: undefined, field: '' });
});
