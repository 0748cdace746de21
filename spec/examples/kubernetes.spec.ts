import fs from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { parseAllDocuments } from 'yaml';
import { rootLogger } from '../../lib/log.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { ROOT } from '../helpers/process.js';
import { RESOURCES, TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

const DIR = path.join(ROOT, 'examples', 'kubernetes');

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function yamlDocs(file: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await fs.readFile(path.join(DIR, file), 'utf8'));
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

function one(docs: Doc[], kind: string): Doc {
  const found = docs.filter((d) => d['kind'] === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

test('daemonset.yaml: host network, cluster DNS, NET_ADMIN, explicit redirect mode and node name', async (t) => {
  const ds = one(await yamlDocs('daemonset.yaml'), 'DaemonSet');
  const rbac = await yamlDocs('rbac.yaml');
  const sa = one(rbac, 'ServiceAccount');
  t.is(ds['apiVersion'], 'apps/v1');
  const pod = ds['spec']['template']['spec'];
  t.deepEqual(ds['spec']['selector']['matchLabels'], ds['spec']['template']['metadata']['labels']);
  t.true(pod['hostNetwork']);
  t.is(pod['dnsPolicy'], 'ClusterFirstWithHostNet');
  t.is(pod['serviceAccountName'], sa['metadata']['name']);
  t.is(ds['metadata']['namespace'], sa['metadata']['namespace']);
  t.is(pod['containers'].length, 1);
  const c = pod['containers'][0];
  t.true(c['securityContext']['capabilities']['add'].includes('NET_ADMIN'));
  t.true(c['args'].includes('--redirect=iptables'));
  t.true(c['args'].includes('--hostname-override=$(NODE_NAME)'));
  const nodeName = c['env'].find((e: Doc) => e['name'] === 'NODE_NAME');
  t.deepEqual(nodeName['valueFrom'], { fieldRef: { fieldPath: 'spec.nodeName' } });
  t.is(c['image'].split(':')[0], 'kube-userspace-proxy');
});

test('rbac.yaml: a service account bound to a read-only ClusterRole', async (t) => {
  const docs = await yamlDocs('rbac.yaml');
  t.is(docs.length, 3);
  const sa = one(docs, 'ServiceAccount');
  const role = one(docs, 'ClusterRole');
  const binding = one(docs, 'ClusterRoleBinding');
  t.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role['metadata']['name'] });
  t.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: sa['metadata']['name'], namespace: sa['metadata']['namespace'] }]);
  for (const rule of role['rules']) t.deepEqual([...rule['verbs']].sort(), ['get', 'list', 'watch']);
  t.deepEqual(
    role['rules'].flatMap((r: Doc) => r['resources'].map((res: string) => `${r['apiGroups'].join(',')}/${res}`)).sort(),
    ['/endpoints', '/nodes', '/services', 'discovery.k8s.io/endpointslices'],
  );
});

test('Dockerfile: slim Node LTS base, iptables and nftables, npm ci, runs the compiled CLI', async (t) => {
  const text = await fs.readFile(path.join(DIR, 'Dockerfile'), 'utf8');
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
  t.true(froms.length >= 1);
  for (const image of froms) t.regex(image, /^node:(20|22|24)-\w+-slim$/);
  t.regex(text, /apt-get install -y[^\n]*\biptables\b[^\n]*\bnftables\b/);
  t.regex(text, /\bnpm ci\b/);
  t.regex(text, /\btsc\b/);
  const entry = /^(?:ENTRYPOINT|CMD)\s+(\[.*\])\s*$/m.exec(text);
  t.truthy(entry);
  t.deepEqual(JSON.parse(entry![1]!), ['node', 'dist/bin/kube-userspace-proxy.js']);
  // The path the image runs is the package's own bin, and the build produces it.
  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  t.is(pkg.bin['kube-userspace-proxy'], 'dist/bin/kube-userspace-proxy.js');
  await t.notThrowsAsync(fs.access(path.join(ROOT, 'dist/bin/kube-userspace-proxy.js')));
  // Every directory the build copies exists.
  for (const m of text.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)) {
    for (const src of m[1]!.trim().split(/\s+/)) await t.notThrowsAsync(fs.access(path.join(ROOT, src)), src);
  }
  const readme = await fs.readFile(path.join(DIR, 'README.md'), 'utf8');
  t.true(readme.includes('docker build -f examples/kubernetes/Dockerfile'));
});

/** The (apiGroup, resource, verb) triples a KubeSource requests from the API server. */
async function requested(t: ExecutionContext, useEndpoints: boolean): Promise<string[]> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } });
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  api.create('nodes', { metadata: { name: 'node-a' } });
  const source = new KubeSource({ kubeConfig: kc, useEndpoints, nodeName: 'node-a' });
  t.teardown(() => source.close());
  let node = false;
  await source.start({ onServiceChange: () => {}, onEndpointSliceChange: () => {}, onSynced: () => {}, onNodeChange: () => void (node = true) });
  // Every watch must have been requested too, and the Node read.
  await waitFor('three watches and the node', () => api.openWatches() === 3 && node);
  await source.close();
  const unknown = api.requests.filter((r) => !r.resource);
  t.deepEqual(unknown, [], 'no request outside the known resources');
  return [...new Set(api.requests.map((r) => `${RESOURCES[r.resource!].group}/${r.resource}:${r.verb}`))].sort();
}

function granted(role: Doc, verbs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const rule of role['rules']) {
    for (const group of rule['apiGroups']) for (const res of rule['resources']) for (const verb of rule['verbs']) if (verbs.includes(verb)) out.add(`${group}/${res}:${verb}`);
  }
  return [...out].sort();
}

test('the ClusterRole grants exactly what the source requests, in both endpoint modes', async (t) => {
  const role = one(await yamlDocs('rbac.yaml'), 'ClusterRole');
  const slices = await requested(t, false);
  const endpoints = await requested(t, true);
  t.deepEqual(slices, ['/nodes:list', '/nodes:watch', '/services:list', '/services:watch', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
  t.deepEqual(endpoints, ['/endpoints:list', '/endpoints:watch', '/nodes:list', '/nodes:watch', '/services:list', '/services:watch']);
  // Nothing requested is missing from the role, and nothing in the role goes unused by both modes.
  t.deepEqual(granted(role, ['list', 'watch']), [...new Set([...slices, ...endpoints])].sort());
});
