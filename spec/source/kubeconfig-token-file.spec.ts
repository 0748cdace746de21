import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KubeConfigError } from '../../lib/errors.js';
import { loadKubeConfig } from '../../lib/source/kube-config.js';
import { TestApiServer } from '../helpers/test-api-server.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-token-file-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function apiServer(t: ExecutionContext): Promise<TestApiServer> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } });
  return api;
}

/** The test server's kubeconfig with its user's credentials replaced by `user` lines. */
function kubeconfigWith(api: TestApiServer, user: string[]): string {
  const lines = api.kubeconfig().split('\n');
  const at = lines.findIndex((l) => l.startsWith('    token: '));
  lines.splice(at, 1, ...user.map((l) => `    ${l}`));
  return lines.join('\n');
}

async function listServices(file: string): Promise<string[]> {
  const { kc } = loadKubeConfig({ kubeconfig: file });
  const list = await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces();
  return list.items.map((s) => s.metadata!.name!);
}

test("a tokenFile relative to the kubeconfig is read from the kubeconfig's directory", async (t) => {
  const api = await apiServer(t);
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'secrets'));
  await fs.writeFile(path.join(dir, 'secrets', 'token'), api.token);
  const file = path.join(dir, 'kubeconfig');
  await fs.writeFile(file, kubeconfigWith(api, ['tokenFile: secrets/token']));
  // Loaded from another working directory: the path is not taken from there.
  t.not(process.cwd(), dir);
  t.deepEqual(await listServices(file), ['web']);
});

test('token wins over tokenFile, as in kubectl', async (t) => {
  const api = await apiServer(t);
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'token'), 'a-wrong-token');
  const file = path.join(dir, 'kubeconfig');
  await fs.writeFile(file, kubeconfigWith(api, [`token: ${api.token}`, `tokenFile: ${path.join(dir, 'token')}`]));
  t.deepEqual(await listServices(file), ['web']);
});

test('a tokenFile that cannot be read is a KubeConfigError naming it, at load', async (t) => {
  const api = await apiServer(t);
  const dir = await tempDir(t);
  const file = path.join(dir, 'kubeconfig');
  const missing = path.join(dir, 'no-such-token');
  await fs.writeFile(file, kubeconfigWith(api, [`tokenFile: ${missing}`]));
  const err = t.throws(() => loadKubeConfig({ kubeconfig: file }), { instanceOf: KubeConfigError });
  t.true(err!.message.includes(`token file ${missing} cannot be read`), err!.message);
  t.is(err!.file, file);
});
