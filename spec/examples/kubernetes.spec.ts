import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import YAML, { parseAllDocuments } from 'yaml';
import type { Config } from '../../lib/config/config.js';
import { parseFlags } from '../../lib/config/flags.js';
import { rootLogger } from '../../lib/log.js';
import { parseAddress } from '../../lib/net/parse-address.js';
import { loadKubeConfig } from '../../lib/source/kube-config.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { ROOT } from '../helpers/process.js';
import { RESOURCES, TestApiServer, testCertificates } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { get, startHealthServer, startProxy } from '../server/fixture.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

const DIR = path.join(ROOT, 'examples', 'kubernetes');
/** Where the kubelet mounts a pod's service-account token and CA. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The Node.js release line in Active LTS (Node 20 reached end of life in April 2026). */
const CURRENT_LTS_MAJOR = 24;
/** Memory sizing documented in daemonset.yaml, in MiB: the agent process, and each further worker. */
const AGENT_REQUEST_MIB = 160;
const AGENT_LIMIT_MIB = 320;
const PER_WORKER_MIB = 50;

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function yamlDocs(file: string): Promise<Doc[]> {
  return parseDocs(await fs.readFile(path.join(DIR, file), 'utf8'), file);
}

function parseDocs(text: string, what: string): Doc[] {
  const docs = parseAllDocuments(text);
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${what}: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

function one(docs: Doc[], kind: string): Doc {
  const found = docs.filter((d) => d['kind'] === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-examples-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Manifests {
  readonly ds: Doc;
  readonly pod: Doc;
  readonly container: Doc;
  readonly configMap: Doc;
  /** config.conf's two documents. */
  readonly kubeProxyConfig: Doc;
  readonly ownConfig: Doc;
}

async function manifests(): Promise<Manifests> {
  const ds = one(await yamlDocs('daemonset.yaml'), 'DaemonSet');
  const pod = ds['spec']['template']['spec'];
  if (pod['containers'].length !== 1) throw new Error('expected one container');
  const configMap = one(await yamlDocs('configmap.yaml'), 'ConfigMap');
  const configDocs = parseDocs(configMap['data']['config.conf'], 'config.conf');
  return {
    ds,
    pod,
    container: pod['containers'][0],
    configMap,
    kubeProxyConfig: one(configDocs, 'KubeProxyConfiguration'),
    ownConfig: one(configDocs, 'KubeUserspaceProxyConfiguration'),
  };
}

/**
 * What the agent would run with: the DaemonSet's args, read by the real flag parser, with the
 * ConfigMap's whole config.conf (both documents) loaded through --config as the pod mounts it.
 */
async function effectiveConfig(t: ExecutionContext, m: Manifests): Promise<Config> {
  const file = path.join(await tempDir(t), 'config.conf');
  await fs.writeFile(file, m.configMap['data']['config.conf'] as string);
  const args = (m.container['args'] as string[]).map((a) => (a.startsWith('--config=') ? `--config=${file}` : a));
  const parsed = parseFlags(args);
  if (parsed.action !== 'run') throw new Error(`expected the args to run the proxy, got ${parsed.action}`);
  t.deepEqual(parsed.warnings, [], 'config.conf sets nothing this proxy ignores');
  return parsed.config;
}

/** A Kubernetes memory quantity in MiB (the suffixes these manifests use). */
function mebibytes(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected quantity ${quantity}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

// ---- the DaemonSet --------------------------------------------------------------------------------

test("daemonset.yaml: host network, the node's DNS, NET_ADMIN, config from the ConfigMap, node name from the downward API", async (t) => {
  const m = await manifests();
  const { ds, pod, container: c } = m;
  const rbac = await yamlDocs('rbac.yaml');
  const sa = one(rbac, 'ServiceAccount');
  t.is(ds['apiVersion'], 'apps/v1');
  t.deepEqual(ds['spec']['selector']['matchLabels'], ds['spec']['template']['metadata']['labels']);
  t.true(pod['hostNetwork']);
  // Not ClusterFirst(WithHostNet): cluster DNS is a ClusterIP this proxy has yet to serve.
  t.is(pod['dnsPolicy'], 'Default');
  t.is(pod['serviceAccountName'], sa['metadata']['name']);
  t.is(ds['metadata']['namespace'], sa['metadata']['namespace']);
  t.is(m.configMap['metadata']['namespace'], ds['metadata']['namespace']);
  t.true(c['securityContext']['capabilities']['add'].includes('NET_ADMIN'));
  t.true(c['args'].includes('--hostname-override=$(NODE_NAME)'));
  t.true(c['args'].some((a: string) => a.startsWith('--config=')));
  const nodeName = c['env'].find((e: Doc) => e['name'] === 'NODE_NAME');
  t.deepEqual(nodeName['valueFrom'], { fieldRef: { fieldPath: 'spec.nodeName' } });
  t.is(c['image'].split(':')[0], 'kube-userspace-proxy');
  // The args and the ConfigMap's settings are accepted by the real flag parser, and say what the
  // walkthrough promises.
  const config = await effectiveConfig(t, m);
  t.is(config.redirect, 'iptables');
  t.is(config.hostnameOverride, '$(node_name)'); // lowercased, as node names are
  t.is(config.kubeconfig, '/var/lib/kube-userspace-proxy/kubeconfig.conf');
  t.deepEqual(config.manifests, []);
  t.is(config.master, undefined);
});

test("daemonset.yaml: the ConfigMap's keys are mounted where --config and clientConnection.kubeconfig say", async (t) => {
  const m = await manifests();
  const config = await effectiveConfig(t, m);
  const configArg = (m.container['args'] as string[]).find((a) => a.startsWith('--config='))!.slice('--config='.length);
  const volumes = new Map<string, Doc>(m.pod['volumes'].map((v: Doc) => [v['name'], v]));
  /** The ConfigMap key a path in the container reads, or undefined. */
  const keyAt = (file: string): string | undefined => {
    for (const mount of m.container['volumeMounts'] as Doc[]) {
      const volume = volumes.get(mount['name']);
      if (volume?.['configMap']?.['name'] !== m.configMap['metadata']['name']) continue;
      if (path.posix.dirname(file) === mount['mountPath']) return path.posix.basename(file);
    }
    return undefined;
  };
  t.is(keyAt(configArg), 'config.conf');
  t.is(keyAt(config.kubeconfig!), 'kubeconfig.conf');
  for (const key of ['config.conf', 'kubeconfig.conf']) t.is(typeof m.configMap['data'][key], 'string', key);
  const configMount = (m.container['volumeMounts'] as Doc[]).find((v) => volumes.get(v['name'])?.['configMap']);
  t.true(configMount!['readOnly']);
  // The kubeconfig's credentials are the service account's, which the kubelet mounts unless told not to.
  const kubeconfig = YAML.parse(m.configMap['data']['kubeconfig.conf']) as Doc;
  t.is(kubeconfig['clusters'][0]['cluster']['certificate-authority'], `${SERVICE_ACCOUNT_DIR}/ca.crt`);
  t.is(kubeconfig['users'][0]['user']['tokenFile'], `${SERVICE_ACCOUNT_DIR}/token`);
  t.not(m.pod['automountServiceAccountToken'], false);
});

test('daemonset.yaml: terminationGracePeriodSeconds leaves time beyond the shutdown grace period', async (t) => {
  const m = await manifests();
  const config = await effectiveConfig(t, m);
  const terminationMs = m.pod['terminationGracePeriodSeconds'] * 1000;
  t.true(Number.isInteger(m.pod['terminationGracePeriodSeconds']));
  // The drain itself, then removing rules and closing: at least 5 s more.
  t.true(terminationMs >= config.shutdownGracePeriodMs + 5000, `${terminationMs} ms vs a grace period of ${config.shutdownGracePeriodMs} ms`);
});

test("daemonset.yaml: the probes use the health server's port and paths, which answer", async (t) => {
  const m = await manifests();
  const config = await effectiveConfig(t, m);
  const bind = parseAddress(config.healthzBindAddress, 'healthz bind address');
  // The kubelet probes the pod's IP, which under hostNetwork is the node's: the server must listen on all addresses.
  t.true(bind.host === '0.0.0.0' || bind.host === '::', config.healthzBindAddress);
  const ports = new Map<string, number>(m.container['ports'].map((p: Doc) => [p['name'], p['containerPort']]));
  const portOf = (probe: Doc): number => (typeof probe['httpGet']['port'] === 'number' ? probe['httpGet']['port'] : ports.get(probe['httpGet']['port'])!);
  const liveness = m.container['livenessProbe'];
  const readiness = m.container['readinessProbe'];
  t.is(portOf(liveness), bind.port);
  t.is(portOf(readiness), bind.port);
  t.is(liveness['httpGet']['path'], '/livez');
  t.is(readiness['httpGet']['path'], '/healthz');
  // The paths as the real health server of a real, synced agent answers them.
  const { agent } = await startProxy(t, {});
  const { url } = await startHealthServer(t, agent);
  t.is((await get(`${url}${liveness['httpGet']['path']}`)).status, 200);
  await waitFor('readiness 200 once synced', async () => (await get(`${url}${readiness['httpGet']['path']}`)).status === 200);
});

test('daemonset.yaml: /lib/modules read-only and the xtables lock from the node', async (t) => {
  const { pod, container } = await manifests();
  const volumes = new Map<string, Doc>(pod['volumes'].map((v: Doc) => [v['name'], v]));
  const mountAt = (p: string): Doc | undefined => (container['volumeMounts'] as Doc[]).find((v) => v['mountPath'] === p);
  const modules = mountAt('/lib/modules');
  t.truthy(modules);
  t.true(modules!['readOnly']);
  t.is(volumes.get(modules!['name'])!['hostPath']['path'], '/lib/modules');
  const lock = mountAt('/run/xtables.lock');
  t.truthy(lock);
  t.deepEqual(volumes.get(lock!['name'])!['hostPath'], { path: '/run/xtables.lock', type: 'FileOrCreate' });
});

test('daemonset.yaml: the memory request and limit grow with --workers (about 50 MiB each)', async (t) => {
  const m = await manifests();
  const config = await effectiveConfig(t, m);
  const { requests, limits } = m.container['resources'];
  const extra = PER_WORKER_MIB * (config.workers - 1);
  t.true(mebibytes(requests['memory']) >= AGENT_REQUEST_MIB + extra, `request ${requests['memory']} for ${config.workers} worker(s)`);
  t.true(mebibytes(limits['memory']) >= AGENT_LIMIT_MIB + extra, `limit ${limits['memory']} for ${config.workers} worker(s)`);
  t.true(mebibytes(limits['memory']) >= mebibytes(requests['memory']));
  // The sizing is documented next to the numbers.
  const text = await fs.readFile(path.join(DIR, 'daemonset.yaml'), 'utf8');
  t.regex(text, /50 ?MiB/);
});

// ---- the ConfigMap ------------------------------------------------------------------------------

test("configmap.yaml: kubeadm's kube-proxy layout (a kubeconfig for the control-plane endpoint, and config.conf)", async (t) => {
  const m = await manifests();
  t.deepEqual(Object.keys(m.configMap['data']).sort(), ['config.conf', 'kubeconfig.conf']);
  const kubeconfig = YAML.parse(m.configMap['data']['kubeconfig.conf']) as Doc;
  // Not the in-cluster address: a placeholder the walkthrough replaces with the control-plane endpoint.
  t.is(kubeconfig['clusters'][0]['cluster']['server'], 'https://CONTROL_PLANE_ENDPOINT:6443');
  t.is(kubeconfig['current-context'], 'default');
  t.is(m.kubeProxyConfig['apiVersion'], 'kubeproxy.config.k8s.io/v1alpha1');
  t.is(m.kubeProxyConfig['clientConnection']['kubeconfig'], '/var/lib/kube-userspace-proxy/kubeconfig.conf');
  t.is(m.ownConfig['apiVersion'], 'kube-userspace-proxy/v1alpha1');
  t.is(m.ownConfig['redirect'], 'iptables');
});

test('configmap.yaml: kubeconfig.conf, pointed at the test API server, lists and watches with the service-account token file and CA', async (t) => {
  const { configMap } = await manifests();
  const api = await TestApiServer.start({ token: 'service-account-token' });
  t.teardown(() => api.close());
  api.create('services', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } });
  // A pod's service-account directory, elsewhere: the kubeconfig is changed in its paths and server only.
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'token'), `${api.token}\n`.trimEnd());
  await fs.writeFile(path.join(dir, 'ca.crt'), (await testCertificates()).caPem);
  const original = configMap['data']['kubeconfig.conf'] as string;
  const text = original.replaceAll(`${SERVICE_ACCOUNT_DIR}/`, `${dir}/`).replace('https://CONTROL_PLANE_ENDPOINT:6443', api.url);
  t.is(text.split(`${dir}/`).length - 1, 2, 'both credential paths rewritten');
  t.true(text.includes(api.url));
  const file = path.join(dir, 'kubeconfig.conf');
  await fs.writeFile(file, text);

  const loaded = loadKubeConfig({ kubeconfig: file });
  t.is(loaded.origin, 'kubeconfig');
  t.is(loaded.server, api.url);
  const source = new KubeSource({ kubeConfig: loaded.kc });
  t.teardown(() => source.close());
  const services: string[] = [];
  let synced = false;
  source.start({ onServiceChange: (key) => services.push(key), onEndpointSliceChange: () => {}, onSynced: () => (synced = true) }).catch(() => {});
  await waitFor('synced (a 401 retries for ever)', () => synced || (api.requests.some((r) => r.status === 401) && 'refused'), 15_000).then((v) => t.is(v, true));
  await waitFor('both watches', () => api.openWatches() === 2);
  t.deepEqual(services, ['default/web']);
  t.true(api.requests.length >= 4);
  t.deepEqual(
    api.requests.filter((r) => r.status !== 200),
    [],
    'every request authorized by the token from the file',
  );
});

test('configmap.yaml: with a token file the API server refuses, the kubeconfig is refused (the token does come from the file)', async (t) => {
  const { configMap } = await manifests();
  const api = await TestApiServer.start({ token: 'the-right-token' });
  t.teardown(() => api.close());
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'token'), 'a-wrong-token');
  await fs.writeFile(path.join(dir, 'ca.crt'), (await testCertificates()).caPem);
  const text = (configMap['data']['kubeconfig.conf'] as string).replaceAll(`${SERVICE_ACCOUNT_DIR}/`, `${dir}/`).replace('https://CONTROL_PLANE_ENDPOINT:6443', api.url);
  const file = path.join(dir, 'kubeconfig.conf');
  await fs.writeFile(file, text);
  const source = new KubeSource({ kubeConfig: loadKubeConfig({ kubeconfig: file }).kc, backoff: { initialMs: 10, maxMs: 40 } });
  t.teardown(() => source.close());
  source.start({ onServiceChange: () => {}, onEndpointSliceChange: () => {}, onSynced: () => {} }).catch(() => {});
  await waitFor('a refused list', () => api.requests.some((r) => r.status === 401));
  t.regex(source.health().lastError ?? (await waitFor('the error', () => source.health().lastError)), /401/);
});

// ---- the image ----------------------------------------------------------------------------------

test('Dockerfile: slim Node LTS base, iptables and nftables, npm ci, runs the compiled CLI', async (t) => {
  const text = await fs.readFile(path.join(DIR, 'Dockerfile'), 'utf8');
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
  t.true(froms.length >= 1);
  for (const image of froms) {
    const m = /^node:(\d+)-\w+-slim$/.exec(image);
    t.truthy(m, image);
    t.is(Number(m![1]), CURRENT_LTS_MAJOR, image);
  }
  t.regex(text, /apt-get install -y[^\n]*\biptables\b[^\n]*\bnftables\b/);
  t.regex(text, /\bnpm ci\b/);
  t.regex(text, /\btsc\b/);
  const entry = /^(?:ENTRYPOINT|CMD)\s+(\[.*\])\s*$/m.exec(text);
  t.truthy(entry);
  t.deepEqual(JSON.parse(entry![1]!), ['node', 'dist/bin/kube-userspace-proxy.js']);
  // The path the image runs is the package's own bin, and the build produces it.
  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; engines: { node: string } };
  t.is(pkg.bin['kube-userspace-proxy'], 'dist/bin/kube-userspace-proxy.js');
  await t.notThrowsAsync(fs.access(path.join(ROOT, 'dist/bin/kube-userspace-proxy.js')));
  // engines admits the image's Node and the oldest one still supported from a checkout.
  const engines = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(pkg.engines.node);
  t.truthy(engines, pkg.engines.node);
  t.true(CURRENT_LTS_MAJOR >= Number(engines![1]));
  t.is(Number(engines![1]), 20);
  // Every directory the build copies exists.
  for (const m of text.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)) {
    for (const src of m[1]!.trim().split(/\s+/)) await t.notThrowsAsync(fs.access(path.join(ROOT, src)), src);
  }
  const readme = await fs.readFile(path.join(DIR, 'README.md'), 'utf8');
  t.true(readme.includes('docker build -f examples/kubernetes/Dockerfile'));
});

// ---- RBAC ---------------------------------------------------------------------------------------

test('rbac.yaml: a service account bound to a read-only ClusterRole', async (t) => {
  const docs = await yamlDocs('rbac.yaml');
  t.is(docs.length, 3);
  const sa = one(docs, 'ServiceAccount');
  const role = one(docs, 'ClusterRole');
  const binding = one(docs, 'ClusterRoleBinding');
  t.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role['metadata']['name'] });
  t.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: sa['metadata']['name'], namespace: sa['metadata']['namespace'] }]);
  for (const rule of role['rules']) for (const verb of rule['verbs']) t.true(['list', 'watch'].includes(verb), verb);
  t.deepEqual(role['rules'].flatMap((r: Doc) => r['resources'].map((res: string) => `${r['apiGroups'].join(',')}/${res}`)).sort(), [
    '/endpoints',
    '/nodes',
    '/services',
    'discovery.k8s.io/endpointslices',
  ]);
});

test('rbac-node-proxier.yaml: the same service account, bound to the built-in system:node-proxier', async (t) => {
  const docs = await yamlDocs('rbac-node-proxier.yaml');
  t.is(docs.length, 2);
  const sa = one(docs, 'ServiceAccount');
  t.deepEqual(sa, one(await yamlDocs('rbac.yaml'), 'ServiceAccount'));
  const binding = one(docs, 'ClusterRoleBinding');
  t.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node-proxier' });
  t.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: sa['metadata']['name'], namespace: sa['metadata']['namespace'] }]);
  t.not(binding['metadata']['name'], one(await yamlDocs('rbac.yaml'), 'ClusterRoleBinding')['metadata']['name']);
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

function granted(rules: readonly Doc[], verbs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    for (const group of rule['apiGroups']) for (const res of rule['resources']) for (const verb of rule['verbs']) if (verbs.includes(verb)) out.add(`${group}/${res}:${verb}`);
  }
  return [...out].sort();
}

/**
 * The rules of the built-in system:node-proxier ClusterRole, as the API server bootstraps them
 * (kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go, nodeProxierRules).
 */
const NODE_PROXIER_RULES: readonly Doc[] = [
  { apiGroups: [''], resources: ['services', 'endpoints'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'update', 'patch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
];

test('the ClusterRole grants exactly what the source requests, in both endpoint modes, and system:node-proxier covers it', async (t) => {
  const role = one(await yamlDocs('rbac.yaml'), 'ClusterRole');
  const slices = await requested(t, false);
  const endpoints = await requested(t, true);
  t.deepEqual(slices, ['/nodes:list', '/nodes:watch', '/services:list', '/services:watch', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
  t.deepEqual(endpoints, ['/endpoints:list', '/endpoints:watch', '/nodes:list', '/nodes:watch', '/services:list', '/services:watch']);
  const all = [...new Set([...slices, ...endpoints])].sort();
  // Nothing requested is missing from the role, and nothing in the role goes unused by both modes.
  t.deepEqual(granted(role['rules'], ['list', 'watch']), all);
  // Only lists and watches are requested: the `get` that system:node-proxier does not grant on
  // services and endpointslices is not needed.
  const nodeProxier = granted(NODE_PROXIER_RULES, ['get', 'list', 'watch']);
  t.deepEqual(
    all.filter((g) => !nodeProxier.includes(g)),
    [],
  );
});

test('the README walkthrough uses the names the manifests use', async (t) => {
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Run on a cluster'), readme.indexOf('\n## ', readme.indexOf('## Run on a cluster') + 1));
  const m = await manifests();
  // The placeholder the sed replaces is the ConfigMap's server.
  const server = (YAML.parse(m.configMap['data']['kubeconfig.conf']) as Doc)['clusters'][0]['cluster']['server'] as string;
  t.true(section.includes(`s|${server}|$SERVER|`));
  // The node label of the one-at-a-time switch is the DaemonSet's (commented) node selector.
  const daemonset = await fs.readFile(path.join(DIR, 'daemonset.yaml'), 'utf8');
  t.regex(daemonset, /^\s+# kube-userspace-proxy: "true"$/m);
  t.true(section.includes('kubectl label node NODE kube-userspace-proxy=true'));
  t.true(section.includes('"key":"kube-userspace-proxy","operator":"DoesNotExist"'));
  // Names of the objects.
  t.true(section.includes(`ds/${m.ds['metadata']['name']}`));
  t.true(section.includes(`app.kubernetes.io/name=${m.ds['metadata']['labels']['app.kubernetes.io/name']}`));
  for (const file of ['configmap.yaml', 'daemonset.yaml', 'rbac.yaml', 'rbac-node-proxier.yaml', 'Dockerfile']) {
    t.true(section.includes(`\`${file}\``), file);
    await t.notThrowsAsync(fs.access(path.join(DIR, file)), file);
  }
});
