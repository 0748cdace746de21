import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KubeConfigError } from '../../lib/errors.js';
import { rootLogger } from '../../lib/log.js';
import { loadKubeConfig } from '../../lib/source/kube-config.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-kubeconfig-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function apiServer(t: ExecutionContext): Promise<TestApiServer> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  return api;
}

function kubeconfigText(opts: { server?: string; currentContext?: string | null; caFile?: string; context?: string; cluster?: string } = {}): string {
  const lines = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${opts.cluster ?? 'c1'}`,
    '  cluster:',
    `    server: ${opts.server ?? 'https://10.0.0.1:6443'}`,
    ...(opts.caFile ? [`    certificate-authority: ${opts.caFile}`] : []),
    'users:',
    '- name: u1',
    '  user:',
    '    token: abc',
    'contexts:',
    `- name: ${opts.context ?? 'ctx1'}`,
    '  context:',
    `    cluster: ${opts.cluster ?? 'c1'}`,
    '    user: u1',
  ];
  if (opts.currentContext !== null) lines.push(`current-context: ${opts.currentContext ?? opts.context ?? 'ctx1'}`);
  return lines.join('\n') + '\n';
}

const noEnv = { env: { HOME: '/nonexistent-home-for-tests' } };

/** Proves a loaded config really reaches the server: a KubeSource syncs through it. */
async function syncsAgainst(t: ExecutionContext, api: TestApiServer, kc: ReturnType<typeof loadKubeConfig>['kc']): Promise<void> {
  api.apply('services', { metadata: { name: 'probe' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } });
  const source = new KubeSource({ kubeConfig: kc, backoff: { initialMs: 50, maxMs: 200 } });
  t.teardown(() => source.close());
  const seen: string[] = [];
  const handler: ServiceSourceHandler = { onServiceChange: (key) => void seen.push(key), onEndpointSliceChange: () => {}, onSynced: () => {} };
  await source.start(handler);
  await waitFor('probe', () => seen.includes('default/probe'));
}

test('--kubeconfig: loads the file, and the config reaches the server over TLS with the token', async (t) => {
  const api = await apiServer(t);
  const dir = await tempDir(t);
  const file = path.join(dir, 'config');
  await fs.writeFile(file, api.kubeconfig());
  const loaded = loadKubeConfig({ kubeconfig: file }, noEnv);
  t.is(loaded.origin, 'kubeconfig');
  t.is(loaded.server, api.url);
  await syncsAgainst(t, api, loaded.kc);
});

test('--kubeconfig: a missing or broken file is a KubeConfigError naming it', async (t) => {
  const dir = await tempDir(t);
  const missing = path.join(dir, 'nope');
  const e1 = t.throws(() => loadKubeConfig({ kubeconfig: missing }, noEnv), { instanceOf: KubeConfigError });
  t.is(e1?.code, 'KUP_ERR_KUBECONFIG');
  t.is(e1?.file, missing);
  t.regex(e1?.message ?? '', /does not exist/);

  const broken = path.join(dir, 'broken');
  await fs.writeFile(broken, 'clusters: [ {name: x, cluster: {} } ]\ncurrent-context: x\n');
  const e2 = t.throws(() => loadKubeConfig({ kubeconfig: broken }, noEnv), { instanceOf: KubeConfigError });
  t.regex(e2?.message ?? '', /is not valid: .*server is missing/);

  const asDir = t.throws(() => loadKubeConfig({ kubeconfig: dir }, noEnv), { instanceOf: KubeConfigError });
  t.is(asDir?.file, dir);
});

test('a kubeconfig without a usable current context is refused', async (t) => {
  const dir = await tempDir(t);
  const none = path.join(dir, 'none');
  await fs.writeFile(none, kubeconfigText({ currentContext: null }));
  t.throws(() => loadKubeConfig({ kubeconfig: none }, noEnv), { instanceOf: KubeConfigError, message: /no current context/ });
  const dangling = path.join(dir, 'dangling');
  await fs.writeFile(dangling, kubeconfigText({ currentContext: 'elsewhere' }));
  t.throws(() => loadKubeConfig({ kubeconfig: dangling }, noEnv), { instanceOf: KubeConfigError, message: /current context "elsewhere"/ });
});

test('a certificate-authority file that cannot be read is refused up front', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config');
  await fs.writeFile(file, kubeconfigText({ caFile: 'missing-ca.crt' }));
  const err = t.throws(() => loadKubeConfig({ kubeconfig: file }, noEnv), { instanceOf: KubeConfigError });
  // Relative paths are relative to the kubeconfig, as kubectl reads them.
  t.true(err?.message.includes(path.join(dir, 'missing-ca.crt')));
});

test('--master replaces the server of the current cluster', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config');
  await fs.writeFile(file, kubeconfigText());
  const https = loadKubeConfig({ kubeconfig: file, master: 'https://192.0.2.10:6443/' }, noEnv);
  t.is(https.server, 'https://192.0.2.10:6443');
  t.false(https.kc.getCurrentCluster()!.skipTLSVerify);
  t.is(https.kc.getCurrentUser()!.token, 'abc');
  // http:// (kubectl proxy) needs client-node's skip-TLS flag to be allowed at all.
  const http = loadKubeConfig({ kubeconfig: file, master: 'http://127.0.0.1:8001' }, noEnv);
  t.is(http.server, 'http://127.0.0.1:8001');
  t.true(http.kc.getCurrentCluster()!.skipTLSVerify);
  t.throws(() => loadKubeConfig({ kubeconfig: file, master: 'ftp://x' }, noEnv), { instanceOf: KubeConfigError, message: /--master/ });
  t.throws(() => loadKubeConfig({ kubeconfig: file, master: 'not a url' }, noEnv), { instanceOf: KubeConfigError, message: /--master/ });
});

test('a kubeconfig with a plain http:// server works as with kubectl', async (t) => {
  const api = await TestApiServer.start({ tls: false });
  t.teardown(() => api.close());
  const dir = await tempDir(t);
  const file = path.join(dir, 'config');
  // No insecure-skip-tls-verify: client-node alone would refuse every request.
  const text = api.kubeconfig().replace(/^\s*insecure-skip-tls-verify: true\n/m, '');
  t.false(text.includes('insecure-skip-tls-verify'));
  await fs.writeFile(file, text);
  const loaded = loadKubeConfig({ kubeconfig: file }, noEnv);
  t.is(loaded.server, api.url);
  await syncsAgainst(t, api, loaded.kc);
});

test('--master alone (no kubeconfig anywhere) talks to that server without credentials', (t) => {
  const loaded = loadKubeConfig({ master: 'http://127.0.0.1:8001' }, noEnv);
  t.is(loaded.origin, 'default');
  t.is(loaded.server, 'http://127.0.0.1:8001');
});

test('in a pod: the service account token and CA are used, and reach the server', async (t) => {
  const api = await apiServer(t);
  const prefix = await tempDir(t);
  const sa = path.join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  await fs.mkdir(sa, { recursive: true });
  await fs.writeFile(path.join(sa, 'token'), api.token);
  await fs.writeFile(path.join(sa, 'ca.crt'), api.caPem);
  await fs.writeFile(path.join(sa, 'namespace'), 'kube-system');
  const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port), HOME: '/nonexistent-home-for-tests' };
  const loaded = loadKubeConfig({}, { env, serviceAccountPrefix: prefix });
  t.is(loaded.origin, 'in-cluster');
  t.is(loaded.server, `https://127.0.0.1:${api.port}`);
  await syncsAgainst(t, api, loaded.kc);
  // --kubeconfig wins over the pod's account.
  const file = path.join(prefix, 'config');
  await fs.writeFile(file, kubeconfigText());
  t.is(loadKubeConfig({ kubeconfig: file }, { env, serviceAccountPrefix: prefix }).origin, 'kubeconfig');
});

test('KUBERNETES_SERVICE_HOST without a token file is not "in a pod"', async (t) => {
  const prefix = await tempDir(t);
  const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', HOME: '/nonexistent-home-for-tests' };
  t.throws(() => loadKubeConfig({}, { env, serviceAccountPrefix: prefix }), { instanceOf: KubeConfigError, message: /no kubeconfig found/ });
});

test('default: $KUBECONFIG files are merged (first current-context wins), else ~/.kube/config', async (t) => {
  const dir = await tempDir(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  await fs.writeFile(a, kubeconfigText({ server: 'https://10.0.0.1:6443', context: 'ctx-a', cluster: 'ca' }));
  await fs.writeFile(b, kubeconfigText({ server: 'https://10.0.0.2:6443', context: 'ctx-b', cluster: 'cb' }));
  const merged = loadKubeConfig({}, { env: { KUBECONFIG: [path.join(dir, 'missing'), a, b].join(path.delimiter) } });
  t.is(merged.origin, 'default');
  t.is(merged.server, 'https://10.0.0.1:6443');
  t.deepEqual(
    merged.kc
      .getContexts()
      .map((c) => c.name)
      .sort(),
    ['ctx-a', 'ctx-b'],
  );
  t.throws(() => loadKubeConfig({}, { env: { KUBECONFIG: path.join(dir, 'missing') } }), { instanceOf: KubeConfigError, message: /\$KUBECONFIG/ });

  const home = path.join(dir, 'home');
  await fs.mkdir(path.join(home, '.kube'), { recursive: true });
  await fs.writeFile(path.join(home, '.kube', 'config'), kubeconfigText({ server: 'https://10.0.0.3:6443' }));
  t.is(loadKubeConfig({}, { env: { HOME: home } }).server, 'https://10.0.0.3:6443');
});

test('no kubeconfig anywhere and no --master is a clear error', (t) => {
  const err = t.throws(() => loadKubeConfig({}, noEnv), { instanceOf: KubeConfigError });
  t.regex(err?.message ?? '', /--kubeconfig or --master/);
});

test('--context picks a context other than current-context, and an unknown one is refused naming the ones there are', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'two');
  // Two contexts: the current one (ctx1 → c1) and "prod" → c2.
  const text = kubeconfigText()
    .replace('clusters:\n', 'clusters:\n- name: c2\n  cluster:\n    server: https://10.0.0.2:6443\n')
    .replace('contexts:\n', 'contexts:\n- name: prod\n  context:\n    cluster: c2\n    user: u1\n');
  await fs.writeFile(file, text);
  t.is(loadKubeConfig({ kubeconfig: file }, noEnv).server, 'https://10.0.0.1:6443');
  const chosen = loadKubeConfig({ kubeconfig: file, context: 'prod' }, noEnv);
  t.is(chosen.server, 'https://10.0.0.2:6443');
  t.is(chosen.kc.getCurrentContext(), 'prod');
  t.throws(() => loadKubeConfig({ kubeconfig: file, context: 'staging' }, noEnv), { instanceOf: KubeConfigError, message: '--context: kubeconfig has no context "staging" (it has: prod, ctx1)' });
});
