import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { FanOutSource } from '../../lib/source/fan-out-source.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';

/** Records what a handler is given, in order. */
class Recorder implements ServiceSourceHandler {
  readonly events: string[] = [];
  onServiceChange(key: string, _p: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    this.events.push(`service ${key} ${current ? 'set' : 'deleted'}`);
  }
  onEndpointSliceChange(key: string, _p: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    this.events.push(`slice ${key} ${current ? 'set' : 'deleted'}`);
  }
  onSynced(): void {
    this.events.push('synced');
  }
}

test('every event of one manifest source reaches every handler; a failing extra handler does not stop the first', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-fanout-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    path.join(dir, 'a.yaml'),
    `
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-a, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: ["10.0.0.1"]}]
`,
  );
  const first = new Recorder();
  const second = new Recorder();
  const failing: ServiceSourceHandler = {
    onServiceChange: () => {
      throw new Error('broken');
    },
    onEndpointSliceChange: () => {
      throw new Error('broken');
    },
    onSynced: () => {
      throw new Error('broken');
    },
  };
  const source = new FanOutSource(new ManifestSource({ paths: [dir] }), [failing, second]);
  t.teardown(() => source.destroy());
  t.is(source.kind, 'manifests');
  await source.start(first);
  const expected = ['service shop/db set', 'slice shop/db-a set', 'synced'];
  t.deepEqual(first.events, expected);
  t.deepEqual(second.events, expected);
});
