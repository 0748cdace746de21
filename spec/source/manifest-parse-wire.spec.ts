import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import { parseManifest } from '../../lib/source/manifest-parser.js';
import type { ManifestEntry } from '../../lib/source/manifest-parser.js';
import { entriesFromJson, entriesToJson } from '../../lib/source/manifest-parse-wire.js';
import { exactlyEqual } from '../helpers/exactly-equal.js';
import { SLICE_WITHOUT_PORTS_OR_HINTS, wireInputs } from '../helpers/wire-inputs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The entries as the main thread gets them by the wire form, and as it got them by a structured clone of the entries. */
function bothWays(text: string, file = 'f.yaml'): { wire: ManifestEntry[]; clone: ManifestEntry[]; json: boolean } {
  const entries = parseManifest(text, file);
  const json = entriesToJson(entries);
  const wire = json === undefined ? structuredClone(entries) : entriesFromJson(structuredClone(json));
  return { wire, clone: structuredClone(parseManifest(text, file)), json: json !== undefined };
}

function agrees(t: ExecutionContext, text: string, label: string, file = 'f.yaml'): boolean {
  const { wire, clone, json } = bothWays(text, file);
  if (!exactlyEqual(wire, clone)) t.fail(`${label}: ${JSON.stringify(text)}\n wire:  ${JSON.stringify(wire)}\n clone: ${JSON.stringify(clone)}`);
  return json;
}

test('undefined-valued keys arrive as keys holding undefined: slice ports, endpoint hints, the object of a broken document', (t) => {
  const text = `${SLICE_WITHOUT_PORTS_OR_HINTS}---\n[not, a, mapping]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets: [{addresses: [{ip: 10.1.0.3}]}]\n`;
  const { wire, clone, json } = bothWays(text);
  t.true(json);
  t.true(exactlyEqual(wire, clone));
  const [slice, broken, endpoints] = wire as [Extract<ManifestEntry, { type: 'slices' }>, Extract<ManifestEntry, { type: 'rejected' }>, Extract<ManifestEntry, { type: 'slices' }>];
  const s: EndpointSliceSpec = slice.slices[0]!;
  t.true('ports' in s && s.ports === undefined);
  t.true('hints' in s.endpoints[0]! && s.endpoints[0]!.hints === undefined);
  t.deepEqual(s.endpoints[1]!.hints, { forZones: ['a'], forNodes: [] });
  t.true('object' in broken && broken.object === undefined);
  t.true('hints' in endpoints.slices[0]!.endpoints[0]! && endpoints.slices[0]!.endpoints[0]!.hints === undefined);
});

test('a file with a nodePort of -0 is not sent as JSON, and keeps it', (t) => {
  const text = `apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, nodePort: -0}]\n`;
  const { wire, clone, json } = bothWays(text);
  t.false(json);
  t.true(exactlyEqual(wire, clone));
  t.true(Object.is((wire[0] as Extract<ManifestEntry, { type: 'service' }>).service.ports[0]!.nodePort, -0));
  t.true(agrees(t, text.replace('-0', '0'), 'nodePort 0'));
});

test("the repository's manifests arrive as they were parsed", (t) => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ya?ml|json)$/.test(e.name)) files.push(p);
    }
  };
  walk(path.join(ROOT, 'examples'));
  t.true(files.length > 0);
  for (const file of files) t.true(agrees(t, fs.readFileSync(file, 'utf8'), file, file), file);
});

test('valid and mutated Services and EndpointSlices, and generated documents, arrive as they were parsed', (t) => {
  let json = 0;
  for (const { text, label, file, objects } of wireInputs(1313, 300)) if (agrees(t, text, label, file) && objects) json++;
  t.true(json > 0);
});
