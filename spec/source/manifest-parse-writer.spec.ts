import test from 'ava';
import type { ExecutionContext } from 'ava';
import { parseManifest } from '../../lib/source/manifest-parser.js';
import { entriesToJson } from '../../lib/source/manifest-parse-wire.js';
import { manifestToJson } from '../../lib/source/manifest-parse-writer.js';
import { SLICE_WITHOUT_PORTS_OR_HINTS, wireInputs } from '../helpers/wire-inputs.js';

/** The text the thread sends for a file, written entry by entry, is the one its entries give written at once. */
function streamedAgrees(t: ExecutionContext, text: string, label: string, file = 'f.yaml'): string | undefined {
  const streamed = manifestToJson(text, file, {});
  const whole = entriesToJson(parseManifest(text, file));
  if (streamed !== whole) t.fail(`${label}: ${JSON.stringify(text)}\n streamed: ${streamed}\n whole:    ${whole}`);
  return streamed;
}

const PLAIN_SERVICE = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.1
  ports: [{port: 80}]
`;

test('a file read entry by entry is sent as the same text, also when a later document leaves it to the other readers', (t) => {
  const later = [
    // A block scalar, an anchor and alias, a tag: read by js-yaml or `yaml`, from the start of the file.
    `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: |\n    text\n`,
    `apiVersion: v1\nkind: Service\nmetadata: &m {name: api, namespace: shop}\nspec: {clusterIP: 10.96.0.2, ports: [{port: 81}]}\n`,
    `apiVersion: v1\nkind: Service\nmetadata: {name: !!str api}\nspec: {clusterIP: 10.96.0.2, ports: [{port: 81}]}\n`,
    // Broken: the whole file is one rejection, or the broken document is.
    `apiVersion: v1\nkind: Service\nmetadata: {name: api\n`,
    `a:\n${'  '.repeat(1)}b:\n${Array.from({ length: 120 }, (_, d) => `${'  '.repeat(d + 2)}k${d}:`).join('\n')}\n`,
  ];
  for (const [i, doc] of later.entries()) {
    const text = `${PLAIN_SERVICE}---\n${SLICE_WITHOUT_PORTS_OR_HINTS}---\n${doc}---\n${PLAIN_SERVICE.replaceAll('web', 'db')}`;
    t.not(streamedAgrees(t, text, `later document ${i}`), undefined);
    t.not(parseManifest(text).length, 0);
  }
});

test('a file with a nodePort of -0 after plain documents is not sent as JSON', (t) => {
  const text = `${PLAIN_SERVICE}---\n${PLAIN_SERVICE.replace('name: web', 'name: db').replace('port: 80', 'port: 80, nodePort: -0')}`;
  t.is(manifestToJson(text, 'f.yaml', {}), undefined);
  t.is(manifestToJson(text.replace('-0', '0'), 'f.yaml', {}), entriesToJson(parseManifest(text.replace('-0', '0'))));
});

test('valid and mutated objects, Lists and generated documents are sent as the same text entry by entry', (t) => {
  let json = 0;
  for (const { text, label, file, objects } of wireInputs(2727, 200, `${PLAIN_SERVICE}---\n`)) if (streamedAgrees(t, text, label, file) !== undefined && objects) json++;
  t.true(json > 0);
});
