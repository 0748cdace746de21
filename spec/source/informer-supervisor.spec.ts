import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import test from 'ava';
import { rootLogger } from '../../lib/log.js';
import { InformerSupervisor } from '../../lib/source/informer-supervisor.js';
import type { InformerSink } from '../../lib/source/informer-supervisor.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

class CountingSink implements InformerSink {
  lists = 0;
  upserts = 0;
  deletes = 0;
  onList(): void {
    this.lists++;
  }
  onUpsert(_obj: KubernetesObject): void {
    this.upserts++;
  }
  onDelete(_obj: KubernetesObject): void {
    this.deletes++;
  }
}

test("a watch stream that lived long is re-made at once, not after client-node's growing delay", async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', { metadata: { name: 'a' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } });
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const core = kc.makeApiClient(CoreV1Api);
  const sink = new CountingSink();
  const supervisor = new InformerSupervisor({
    resource: 'services',
    path: '/api/v1/services',
    kubeConfig: kc,
    list: () => core.listServiceForAllNamespaces(),
    sink,
    silenceBoundMs: 60_000,
    longLivedWatchMs: 150,
  });
  t.teardown(() => supervisor.close());
  supervisor.start();
  await waitFor('listed and watching', () => sink.lists === 1 && api.openWatches() === 1);
  // Each stream lives past 150 ms and ends with no event: client-node alone would wait 0, 1, 2, 4 s.
  const gaps: number[] = [];
  for (let i = 0; i < 4; i++) {
    const watches = api.seen('services', 'watch').length;
    await waitFor('stream older than longLivedWatchMs', () => Date.now() - api.seen('services', 'watch').at(-1)!.atMs > 200);
    const t0 = Date.now();
    api.dropWatches();
    await waitFor('re-watched', () => api.seen('services', 'watch').length > watches && api.openWatches() === 1, 5000);
    gaps.push(Date.now() - t0);
  }
  t.log(`re-watch after each routine stream end: ${gaps.join(', ')} ms`);
  for (const gap of gaps) t.true(gap < 500, `${gap} ms`);
  t.is(sink.lists, 1, 'resumed from the resourceVersion each time');
  t.true(supervisor.health().connected);
});
