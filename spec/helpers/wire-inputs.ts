import { generatedDocument, mutatedDocument } from './generated-yaml.js';
import { goodService, goodSlice, mutatedObject } from './object-mutations.js';
import { SeededRandom } from './seeded-random.js';

/** A slice whose `ports` and one endpoint's `hints` are left out: keys the entries keep holding undefined. */
export const SLICE_WITHOUT_PORTS_OR_HINTS = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.1.0.1]
- addresses: [10.1.0.2]
  hints: {forZones: [{name: a}]}
  targetRef: {kind: Pod, name: web-0}
`;

/** One file for a differential spec of the parse thread's wire form. */
export interface WireInput {
  readonly text: string;
  readonly label: string;
  readonly file: string;
  /** The valid and mutated objects, as YAML documents (most of them can travel as JSON). */
  readonly objects: boolean;
}

/**
 * `count` rounds of files, from `seed`: valid Services and slices with a mutated object, as YAML
 * documents and as a JSON List, then a generated YAML document and a mutation of it, each after
 * `prefix`.
 */
export function* wireInputs(seed: number, count: number, prefix = ''): Generator<WireInput> {
  const r = new SeededRandom(seed);
  for (let i = 0; i < count; i++) {
    const good = [goodService(`web-${i}`, `10.96.1.${(i % 250) + 1}`), goodSlice(`web-${i}-a`, `web-${i}`, `10.1.0.${(i % 250) + 1}`, 8080)];
    const bad = mutatedObject(r, i, `10.96.2.${(i % 250) + 1}`).object;
    yield { text: [...good, bad].map((o) => JSON.stringify(o)).join('\n---\n'), label: `objects ${i}`, file: 'f.yaml', objects: true };
    yield { text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...good, bad] }), label: `list ${i}`, file: 'f.json', objects: false };
    const doc = generatedDocument(r);
    yield { text: `${prefix}${doc}`, label: `generated ${i}`, file: 'f.yaml', objects: false };
    yield { text: `${prefix}${mutatedDocument(r, doc)}`, label: `mutated ${i}`, file: 'f.yaml', objects: false };
  }
}
