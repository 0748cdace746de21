import test from 'ava';
import { endpointIndex } from '../../lib/balancer/endpoint-index.js';
import { makeEndpoint } from '../../lib/model/endpoint.js';
import type { Endpoint } from '../../lib/model/endpoint.js';

/** The index as a plain Map would hold it: the first endpoint of each key. */
function reference(endpoints: readonly Endpoint[]): Map<string, Endpoint> {
  const out = new Map<string, Endpoint>();
  for (const ep of endpoints) if (!out.has(ep.key)) out.set(ep.key, ep);
  return out;
}

const lists: Array<[string, Endpoint[]]> = [
  ['none', []],
  ['one', [makeEndpoint('10.0.0.1', 80)]],
  ['one IPv6', [makeEndpoint('fd00::1', 80, 'node-a')]],
  ['one listed twice', [makeEndpoint('10.0.0.1', 80, 'node-a'), makeEndpoint('10.0.0.1', 80, 'node-b')]],
  ['two', [makeEndpoint('10.0.0.1', 80), makeEndpoint('10.0.0.2', 80)]],
  ['two, the first listed twice', [makeEndpoint('10.0.0.1', 80, 'a'), makeEndpoint('10.0.0.1', 80, 'b'), makeEndpoint('10.0.0.2', 80)]],
  ['one address, two ports', [makeEndpoint('10.0.0.1', 80), makeEndpoint('10.0.0.1', 81)]],
];

for (const [name, endpoints] of lists) {
  test(`the index of ${name} reads as a Map of the first endpoint of each key`, (t) => {
    const index = endpointIndex(endpoints);
    const want = reference(endpoints);
    t.is(index.size, want.size);
    t.deepEqual([...index], [...want]);
    t.deepEqual([...index.keys()], [...want.keys()]);
    t.deepEqual([...index.values()], [...want.values()]);
    t.deepEqual([...index.entries()], [...want.entries()]);
    const seen: Array<[string, Endpoint]> = [];
    index.forEach((ep, key, map) => {
      t.is(map, index);
      seen.push([key, ep]);
    });
    t.deepEqual(seen, [...want]);
    for (const ep of endpoints) {
      t.true(index.has(ep.key));
      t.is(index.get(ep.key), want.get(ep.key), 'the same object as the first of its key');
    }
    t.false(index.has('10.9.9.9:80'));
    t.is(index.get('10.9.9.9:80'), undefined);
  });
}
