import fs from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { serviceScopeOf } from '../../lib/agent/service-scope-of.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { ScopedServiceSource } from '../../lib/source/scoped-service-source.js';
import { ROOT } from '../helpers/process.js';
import { RESOURCES, TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

// examples/kubernetes/local-user-rbac.yaml against what the proxy really asks of the API server
// on a laptop with --namespace and --selector (the reads), and the port-forward grant.

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function docs(): Promise<Doc[]> {
  const parsed = parseAllDocuments(await fs.readFile(path.join(ROOT, 'examples', 'kubernetes', 'local-user-rbac.yaml'), 'utf8'));
  for (const d of parsed) if (d.errors.length > 0) throw new Error(d.errors[0]!.message);
  return parsed.map((d) => d.toJS() as Doc);
}

function granted(rules: readonly Doc[]): string[] {
  const out: string[] = [];
  for (const rule of rules) for (const group of rule['apiGroups']) for (const res of rule['resources']) for (const verb of rule['verbs']) out.push(`${group}/${res}:${verb}`);
  return out.sort();
}

test('the read role grants exactly the lists and watches of a scoped source; port-forward is get and create, bound per namespace', async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const source = new ScopedServiceSource(new KubeSource({ kubeConfig: kc, nodeName: 'laptop' }), serviceScopeOf({ namespaces: ['shop'], selector: 'app=orders' })!);
  t.teardown(() => source.close());
  await source.start({ onServiceChange: () => {}, onEndpointSliceChange: () => {}, onSynced: () => {}, onNodeChange: () => {} });
  await waitFor('three watches', () => api.openWatches() === 3);
  await source.close();
  const requested = [...new Set(api.requests.map((r) => `${RESOURCES[r.resource!].group}/${r.resource}:${r.verb}`))].sort();

  const all = await docs();
  const roles = all.filter((d) => d['kind'] === 'ClusterRole');
  const read = roles.find((r) => r['metadata']['name'] === 'kube-userspace-proxy-local-read')!;
  const forward = roles.find((r) => r['metadata']['name'] === 'kube-userspace-proxy-local-port-forward')!;
  t.deepEqual(granted(read['rules']), requested);
  t.deepEqual(granted(forward['rules']), ['/pods/portforward:create', '/pods/portforward:get']);
  const binding = all.find((d) => d['kind'] === 'RoleBinding')!;
  t.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: forward['metadata']['name'] });
  t.is(binding['metadata']['namespace'], 'shop');
  const clusterBinding = all.find((d) => d['kind'] === 'ClusterRoleBinding')!;
  t.is(clusterBinding['roleRef']['name'], read['metadata']['name']);
  t.deepEqual(binding['subjects'], clusterBinding['subjects']);
});
