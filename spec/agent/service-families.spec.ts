import test from 'ava';
import { ServiceFamilies } from '../../lib/agent/service-families.js';
import { servedFamilies } from '../../lib/agent/sync-status.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { serviceFromObject } from '../../lib/model/service-from-object.js';

/** Built by the real parser, so that it has every field a service has. */
function svc(name: string, clusterIPs: string[]): ServiceSpec {
  return serviceFromObject({
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', clusterIP: clusterIPs[0], clusterIPs, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  });
}

test('the counted families are those servedFamilies finds by walking the applied services, after every change', (t) => {
  const families = new ServiceFamilies();
  const applied = new Map<string, ServiceSpec>();
  const apply = (name: string, clusterIPs: string[] | undefined): void => {
    const previous = applied.get(name);
    if (clusterIPs === undefined) {
      if (previous !== undefined) families.delete(previous);
      applied.delete(name);
    } else {
      const current = svc(name, clusterIPs);
      families.set(previous, current);
      applied.set(name, current);
    }
    t.deepEqual(families.families(), servedFamilies(applied.values()), `after ${name} → ${clusterIPs?.join(',') ?? 'deleted'}`);
  };
  t.deepEqual(families.families(), ['IPv4']);
  apply('v6', ['fd00::1']);
  apply('dual', ['10.0.0.1', 'fd00::2']);
  apply('v4', ['10.0.0.2']);
  apply('dual', ['10.0.0.1']); // dual-stack → IPv4 only: IPv6 still used by v6
  apply('v6', undefined); // the last IPv6 service gone
  t.deepEqual(families.families(), ['IPv4']);
  apply('v4', ['fd00::3']); // IPv4 → IPv6
  apply('dual', undefined);
  apply('v4', undefined);
  apply('never-applied', undefined);
  t.deepEqual(families.families(), ['IPv4']);
});
