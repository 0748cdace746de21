import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ApiException } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { errors as undiciErrors } from 'undici';
import winston from 'winston';
import { rootLogger } from '../../lib/log.js';
import { loadKubeConfig } from '../../lib/source/kube-config.js';
import type { LoadedKubeConfig } from '../../lib/source/kube-config.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { UnreachableClusterIPWarning } from '../../lib/source/unreachable-cluster-ip-warning.js';
import { TestApiServer, testCertificates } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

const WARNING = 'api server unreachable at the kubernetes service clusterIP';

// ---- log capture -------------------------------------------------------------------------------

/** Every log line of this process, as JSON (stderr output is silenced to keep the test output readable). */
const logLines: Array<Record<string, unknown>> = [];
for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';
const capture = new winston.transports.Stream({
  format: winston.format.json(),
  stream: new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  }),
});
rootLogger.add(capture);
test.after.always(() => {
  rootLogger.remove(capture);
});

/** The warnings about `server` (tests run in parallel; each has its own address). */
function warningsFor(server: string): Array<Record<string, unknown>> {
  return logLines.filter((l) => l['message'] === WARNING && l['server'] === server);
}

// ---- fixtures -----------------------------------------------------------------------------------

/**
 * A pod's view of the cluster: $KUBERNETES_SERVICE_HOST/_PORT and a service-account directory
 * (token and CA) under a temporary prefix, loaded as the agent loads it.
 */
async function inCluster(t: ExecutionContext, host: string, port: number, token: string): Promise<LoadedKubeConfig> {
  const prefix = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-in-cluster-'));
  t.teardown(() => fs.rm(prefix, { recursive: true, force: true }));
  const sa = path.join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  await fs.mkdir(sa, { recursive: true });
  await fs.writeFile(path.join(sa, 'token'), token);
  await fs.writeFile(path.join(sa, 'ca.crt'), (await testCertificates()).caPem);
  await fs.writeFile(path.join(sa, 'namespace'), 'kube-system');
  const env = { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: String(port) };
  return loadKubeConfig({}, { env, serviceAccountPrefix: prefix });
}

/**
 * A loopback address only this file uses: specs running in parallel bind ephemeral ports on
 * 127.0.0.1, and one of them could take a released port there and answer in place of nobody.
 */
const DEAD_HOST = '127.79.0.1';

/** A port nobody listens on at DEAD_HOST: bound by the kernel's choice, then released. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, DEAD_HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A KubeSource wired as serviceSourceFor wires it, retrying fast; closed in teardown. */
function startSource(t: ExecutionContext, loaded: LoadedKubeConfig): { source: KubeSource; started: Promise<void> } {
  const source = new KubeSource({
    kubeConfig: loaded.kc,
    backoff: { initialMs: 10, maxMs: 40 },
    onListError: UnreachableClusterIPWarning.for(loaded)?.observe,
  });
  t.teardown(() => source.close());
  const started = source.start({ onServiceChange: () => {}, onEndpointSliceChange: () => {}, onSynced: () => {} });
  started.catch(() => {}); // rejected with ClosedError at teardown when it never synced
  return { source, started };
}

// ---- tests --------------------------------------------------------------------------------------

test('in-cluster config with nothing at the kubernetes service address: one warning naming the cause and the fix, not one per retry', async (t) => {
  const port = await deadPort();
  const loaded = await inCluster(t, DEAD_HOST, port, 'some-token');
  t.is(loaded.origin, 'in-cluster');
  t.is(loaded.server, `https://${DEAD_HOST}:${port}`);
  const { source } = startSource(t, loaded);
  // Both informers have failed and retried several times.
  await waitFor('several failed lists', () => source.health().informerRestarts >= 6);
  t.false(source.health().connected);
  const warnings = warningsFor(loaded.server);
  t.is(warnings.length, 1);
  const w = warnings[0]!;
  t.is(w['level'], 'warn');
  t.is(w['component'], 'kubernetes');
  t.regex(String(w['error']), /ECONNREFUSED/);
  t.regex(String(w['cause']), /ClusterIP of the kubernetes Service/);
  t.regex(String(w['fix']), /--kubeconfig/);
  t.regex(String(w['fix']), /control-plane endpoint/);
  t.regex(String(w['fix']), /examples\/kubernetes\/configmap\.yaml/);
});

test('a kubeconfig naming an unreachable server gets the ordinary retry warnings only', async (t) => {
  const port = await deadPort();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-kubeconfig-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const api = await TestApiServer.start();
  const file = path.join(dir, 'kubeconfig');
  await fs.writeFile(file, api.kubeconfig({ server: `https://${DEAD_HOST}:${port}` }));
  await api.close();
  const loaded = loadKubeConfig({ kubeconfig: file });
  t.is(loaded.origin, 'kubeconfig');
  t.is(UnreachableClusterIPWarning.for(loaded), undefined);
  const { source } = startSource(t, loaded);
  await waitFor('several failed lists', () => source.health().informerRestarts >= 4);
  t.deepEqual(warningsFor(loaded.server), []);
});

test('in-cluster config whose API server answers with errors: reachable, so no warning; it syncs once the errors stop', async (t) => {
  const token = 'in-cluster-token';
  const api = await TestApiServer.start({ token });
  t.teardown(() => api.close());
  api.create('services', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } });
  const failing = api.fail({ status: 500, verbs: ['list'] });
  const loaded = await inCluster(t, '127.0.0.1', api.port, token);
  const { source, started } = startSource(t, loaded);
  await waitFor('several failed lists', () => failing.hits >= 4);
  failing.clear();
  // The service-account token is read from its file and accepted (401 otherwise, and no sync).
  await started;
  t.true(source.health().connected);
  t.deepEqual(warningsFor(loaded.server), []);
});

/** An error as undici's fetch rejects with it: a TypeError whose cause is what failed. */
function fetchFailed(cause: Error): Error {
  return new TypeError('fetch failed', { cause });
}

function connectError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 10.96.0.1:443`), { code });
}

async function timeoutReason(): Promise<unknown> {
  const signal = AbortSignal.timeout(1);
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  return signal.reason;
}

test('what counts as nothing answering at the address: connection failures and timeouts, not HTTP errors', async (t) => {
  const cases: Array<[string, unknown, boolean]> = [
    // No route to a ClusterIP nobody serves: the SYN goes unanswered until undici gives up.
    ['connect timeout', fetchFailed(new undiciErrors.ConnectTimeoutError()), true],
    ['list deadline', await timeoutReason(), true],
    ['refused', fetchFailed(connectError('ECONNREFUSED')), true],
    ['no route', fetchFailed(connectError('EHOSTUNREACH')), true],
    ['connection cut', fetchFailed(new undiciErrors.SocketError('other side closed')), true],
    ['HTTP 500', new ApiException(500, 'Internal Server Error', '{"kind":"Status","message":"boom"}', {}), false],
    ['HTTP 401', new ApiException(401, 'Unauthorized', '', {}), false],
    ['TLS: certificate not trusted', fetchFailed(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })), false],
    ['not an Error', 'a string', false],
  ];
  for (const [name, err, warns] of cases) {
    const server = `https://10.96.0.1:443/${encodeURIComponent(name)}`;
    const warning = UnreachableClusterIPWarning.for({ origin: 'in-cluster', server })!;
    warning.observe(err);
    warning.observe(err);
    t.is(warningsFor(server).length, warns ? 1 : 0, name);
  }
});
