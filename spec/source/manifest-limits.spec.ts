import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { rootLogger } from '../../lib/log.js';
import { DEFAULT_MAX_MANIFEST_BYTES, DEFAULT_MAX_MANIFEST_DEPTH, manifestLimitExceeded, manifestSizeExceeded } from '../../lib/source/manifest-limits.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ManifestRejection } from '../../lib/source/manifest-source.js';
import { parseManifest } from '../../lib/source/manifest-parser.js';
import { deepBlockService, deepFlowService } from '../helpers/hostile-manifests.js';
import { waitFor } from '../helpers/wait-for.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

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

test('a manifest file over 16 MiB is refused from its size, unread, and its objects keep their last good state', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-limits-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const service = 'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n';
  await writeFile(path.join(dir, 'a.yaml'), service);
  const rejections: ManifestRejection[] = [];
  const changes: Array<[string, boolean]> = [];
  const source = new ManifestSource({ paths: [dir], onReject: (r) => rejections.push(r) });
  t.teardown(() => source.close());
  await source.start({
    onServiceChange: (key, _previous, current) => changes.push([key, current !== undefined]),
    onEndpointSliceChange: () => {},
    onSynced: () => {},
  });
  t.deepEqual(changes, [['default/web', true]]);
  // The same Service, padded with a comment past the limit.
  await writeFile(path.join(dir, 'a.yaml'), `${service}#${'x'.repeat(DEFAULT_MAX_MANIFEST_BYTES)}\n`);
  await waitFor('rejected', () => rejections.length > 0);
  t.is(rejections.length, 1);
  t.like(rejections[0], { file: path.join(dir, 'a.yaml'), document: 0, object: 'unknown' });
  t.regex(rejections[0]!.reason, /file is \d+ bytes, over the limit of 16777216 bytes for a manifest; not parsed/);
  t.deepEqual(changes, [['default/web', true]], 'nothing deleted');
});
