import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { rootLogger } from '../../lib/log.js';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

class State implements ServiceSourceHandler {
  readonly services = new Map<string, ServiceSpec>();
  readonly slices = new Map<string, EndpointSliceSpec>();
  onServiceChange(key: string, _previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    if (current) this.services.set(key, current);
    else this.services.delete(key);
  }
  onEndpointSliceChange(key: string, _previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    if (current) this.slices.set(key, current);
    else this.slices.delete(key);
  }
  onSynced(): void {}
}

function service(name: string, ip: string): KubeObject {
  return { metadata: { namespace: 'default', name }, spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] } };
}

function slice(name: string, serviceName: string, address: string): KubeObject {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

test('after an outage, Services and EndpointSlices converge together: a recovered informer retries its sibling at once', async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', service('old', '10.96.7.1'));
  api.create('endpointslices', slice('old-1', 'old', '10.7.0.1'));
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  // Delays 500, 1000, 2000, 4000 ms (±20%), capped at 8 s: an outage's worth, compressed.
  const source = new KubeSource({ kubeConfig: kc, backoff: { initialMs: 500, maxMs: 8000 } });
  t.teardown(() => source.close());
  const state = new State();
  await source.start(state);
  await waitFor('both watches open', () => api.openWatches() === 2);

  // The Services informer alone fails for a while, so that its back-off grows as in a long outage
  // (the EndpointSlices informer, healthy, keeps its back-off at the start).
  const failing = api.fail({ status: 500, resources: ['services'] });
  api.dropWatches({ resource: 'services' });
  await waitFor('four failed Services watches', () => api.seen('services', 'watch', 500).length >= 4, 10_000);
  // It now waits 4000 ms ±20% before its next try: at least 3200 ms from here.
  failing.clear();
  const waitingSince = performance.now();

  // The whole API server goes away; a Service and a slice are created while it is away.
  const restarts = source.health().informerRestarts;
  await api.stop();
  api.create('services', service('new', '10.96.7.2'));
  api.create('endpointslices', slice('new-1', 'new', '10.7.0.2'));
  await waitFor('the EndpointSlices informer failed too', () => source.health().informerRestarts > restarts);
  await api.restart();
  const back = performance.now();

  await waitFor('the new Service and its slice', () => state.services.has('default/new') && state.slices.has('default/new-1'), 10_000);
  const serviceAfterMs = Math.round(performance.now() - back);
  t.log(`Service and EndpointSlice seen ${serviceAfterMs} ms after the API server came back (the Services informer's own back-off had ${Math.round(3200 - (back - waitingSince))} ms or more left)`);
  // Without the sibling retry the Service waits out the rest of its back-off (over 2.5 s here).
  t.true(serviceAfterMs < 1500, `${serviceAfterMs} ms`);
  await waitFor('connected', () => source.health().connected);
});
