import test from 'ava';
import { countNoLocalEndpoints, servedFamilies } from '../../lib/agent/sync-status.js';
import type { ScopedPort } from '../../lib/agent/sync-status.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { serviceFromObject } from '../../lib/model/service-from-object.js';

/** Built by the real parser, so that it has every field a service has. */
function svc(name: string, clusterIPs: string[], spec: Record<string, unknown> = {}): ServiceSpec {
  return serviceFromObject({
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', clusterIP: clusterIPs[0], clusterIPs, ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...spec },
  });
}

function port(service: ServiceSpec, scope: ScopedPort['scope'], endpoints: number, clusterEndpoints: number): ScopedPort {
  return { service, port: service.ports[0]!, scope, endpoints, clusterEndpoints };
}

test('served families: those of the cluster IPs, IPv4 when there is no service', (t) => {
  t.deepEqual(servedFamilies([]), ['IPv4']);
  t.deepEqual(servedFamilies([svc('a', ['fd00::1'])]), ['IPv6']);
  t.deepEqual(servedFamilies([svc('a', ['fd00::1', '10.0.0.1']), svc('b', ['10.0.0.2'])]), ['IPv4', 'IPv6']);
});

test('no local endpoints: Local policies with endpoints elsewhere only, per scope and per family of the cluster IPs', (t) => {
  const internalLocal = svc('il', ['10.0.0.1', 'fd00::1'], { internalTrafficPolicy: 'Local' });
  const externalLocal = svc('el', ['10.0.0.2'], { externalTrafficPolicy: 'Local', externalIPs: ['192.0.2.1'] });
  const externalNoPortal = svc('en', ['10.0.0.3'], { externalTrafficPolicy: 'Local' });
  const counts = countNoLocalEndpoints([
    port(internalLocal, 'all', 0, 2), // internal, both families
    port(externalLocal, 'internal', 2, 2), // Cluster: has endpoints
    port(externalLocal, 'external', 0, 2), // external
    port(externalNoPortal, 'all', 0, 2), // no external portal: nothing to count
    port(svc('none', ['10.0.0.4'], { internalTrafficPolicy: 'Local' }), 'all', 0, 0), // no endpoints at all: rejected, not counted
    port(svc('here', ['10.0.0.5'], { internalTrafficPolicy: 'Local' }), 'all', 1, 3), // a local endpoint
  ]);
  t.deepEqual(Object.fromEntries(counts), { IPv4: { internal: 1, external: 1 }, IPv6: { internal: 1, external: 0 } });
});
