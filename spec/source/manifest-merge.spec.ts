import test from 'ava';
import { configureLogging } from '../../lib/log.js';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { NodeSpec } from '../../lib/model/node.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import type { ManifestObject } from '../../lib/source/manifest-file-cache.js';
import { ManifestMerge } from '../../lib/source/manifest-merge.js';
import type { ManifestFileChange } from '../../lib/source/manifest-merge.js';

// Objects are compared by identity in the merge, so plain stand-ins carry only the fields it reads.
function service(name: string, rev: number): ManifestObject {
  return { type: 'service', service: { namespace: 'ns', name, rev } as unknown as ServiceSpec };
}
function slices(name: string, rev: number, sliceNames: readonly string[]): ManifestObject {
  return { type: 'slices', slices: sliceNames.map((s) => ({ namespace: 'ns', name: s, rev }) as unknown as EndpointSliceSpec) };
}
function node(name: string, rev: number): ManifestObject {
  return { type: 'node', node: { name, labels: { rev: String(rev) }, deleting: false, taints: [] } as NodeSpec };
}

/** A small seeded generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

// The reference merges warn about every duplicate anew: thousands of lines that say nothing here.
configureLogging('error', 'text');

type Files = Map<string, ReadonlyMap<string, ManifestObject>>;

function sorted(files: Files): [string, ReadonlyMap<string, ManifestObject>][] {
  return [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function snapshot(merge: ManifestMerge): unknown {
  const byKey = <V>(m: ReadonlyMap<string, V>): [string, V][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
  return { services: byKey(merge.services), slices: byKey(merge.slices), node: merge.node };
}

test('a few files changed at a time merge to what merging every file gives, duplicates and slice-key collisions included', (t) => {
  const next = random(20261207);
  const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const fileNames = ['a.yaml', 'b.yaml', 'c.yaml', 'd/e.yaml'];
  const names = ['web', 'db', 'cache', 'api', 'queue', 'auth'];
  let files: Files = new Map();
  const merge = new ManifestMerge('node-a');
  merge.all(sorted(files));
  let incremental = 0;
  for (let step = 0; step < 3000; step++) {
    const changed = new Set(Array.from({ length: 1 + Math.floor(next() * 2) }, () => pickOf(fileNames)));
    const after: Files = new Map(files);
    const changes: ManifestFileChange[] = [];
    for (const file of changed) {
      const before = files.get(file);
      if (before && next() < 0.15) {
        after.delete(file);
        changes.push({ file, before, after: undefined });
        continue;
      }
      const objects = new Map(before);
      for (let k = Math.floor(next() * 3); k >= 0; k--) {
        // Mostly names of this file's own; one in twenty shared, so objects now and then sit in two files.
        const name = next() < 0.05 ? pickOf(names) : `${file[0]}-${pickOf(names)}`;
        const roll = next();
        // Now and then an Endpoints-like object whose slice name collides with another's.
        if (roll < 0.3) objects.delete(`Service ns/${name}`);
        else if (roll < 0.6) objects.set(`Service ns/${name}`, service(name, step));
        else if (roll < 0.85) objects.set(`EndpointSlice ns/${name}`, slices(name, step, [`${name}-a`]));
        else if (roll < 0.9) objects.set(`Endpoints ns/${name}`, slices(name, step, [next() < 0.1 ? `${pickOf(names)}-a` : `${name}-e`, `${name}-b`]));
        else {
          const nodeName = pickOf(['node-a', 'node-b']);
          objects.set(`Node ${nodeName}`, node(nodeName, step));
        }
      }
      after.set(file, objects);
      changes.push({ file, before, after: objects });
    }
    files = after;
    if (merge.update(changes)) incremental++;
    else merge.all(sorted(files));
    const reference = new ManifestMerge('node-a');
    reference.all(sorted(files));
    t.deepEqual(snapshot(merge), snapshot(reference), `step ${step}`);
  }
  // The comparison must have exercised the incremental path, not only the fallback.
  t.true(incremental > 500, `${incremental} incremental merges`);
});

test('an update that cannot be merged incrementally changes nothing and says so', (t) => {
  const merge = new ManifestMerge('');
  const a = new Map([['Service ns/web', service('web', 1)]]);
  merge.all([['a.yaml', a]]);
  const before = snapshot(merge);
  // The same object in a second file: the first file in path order must win, which needs all().
  t.false(merge.update([{ file: 'b.yaml', before: undefined, after: new Map([['Service ns/web', service('web', 2)]]) }]));
  t.deepEqual(snapshot(merge), before);
});
