import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { ClusterDns } from '../../lib/dns/cluster-dns.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { dig, digSupport } from '../helpers/dig.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The zone fed by the Kubernetes API source: the real client-node informers against the test API
 * server, then the real dig. Skipped without dig except when CI=true.
 */
const support = await digSupport();
const mustRun = process.env['CI'] === 'true';
const digTest = support.ok || mustRun ? test : test.skip;
if (!support.ok) {
  if (mustRun) test('dig is installed (CI=true)', (t) => t.fail(`CI=true but the DNS tests cannot run: ${support.reason}`));
  else console.warn(`skipping the DNS API-source test: ${support.reason} (with CI=true it runs, and fails)`);
}

digTest('Services and EndpointSlices created, changed and deleted in the API are answered for as they happen', async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const dns = new ClusterDns({ config: { dnsBindAddress: '127.0.0.1:0', clusterDomain: 'cluster.local', dnsTtlMs: 5000, dnsUpstream: 'refuse', resolvConf: '/nonexistent' } });
  const source = new KubeSource({ kubeConfig, backoff: { initialMs: 50, maxMs: 400 } });
  t.teardown(() => {
    source.destroy();
    dns.destroy();
  });
  await dns.start();
  await source.start(dns.zone);
  const server = dns.server.address()!;

  api.create('services', { metadata: { namespace: 'data', name: 'db' }, spec: { clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] } });
  const slice = (addresses: Array<[string, string]>) => ({
    metadata: { namespace: 'data', name: 'db-x1', labels: { 'kubernetes.io/service-name': 'db' } },
    addressType: 'IPv4',
    endpoints: addresses.map(([ip, hostname]) => ({ addresses: [ip], hostname, conditions: { ready: true } })),
    ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
  });
  api.create('endpointslices', slice([['10.9.0.1', 'db-0']]));
  const within = async (what: string, check: () => Promise<boolean>) => {
    const started = Date.now();
    // The time is logged, not asserted: this machine may be busy. The deadline only ends a hang.
    t.true(await waitFor(what, check, 5000, 10), what);
    t.log(`${what}: ${Date.now() - started} ms`);
  };
  await within('the new headless service', async () => (await dig(server, ['db-0.db.data.svc.cluster.local'])).answers[0]?.data === '10.9.0.1');

  api.update(
    'endpointslices',
    slice([
      ['10.9.0.1', 'db-0'],
      ['10.9.0.2', 'db-1'],
    ]),
  );
  await within('the new endpoint', async () => (await dig(server, ['_pg._tcp.db.data.svc.cluster.local', 'SRV'])).answers.length === 2);

  api.create('services', { metadata: { namespace: 'data', name: 'alias' }, spec: { type: 'ExternalName', externalName: 'db.example.org' } });
  await within('the ExternalName service', async () => (await dig(server, ['alias.data.svc.cluster.local'])).answers[0]?.data === 'db.example.org.');

  api.delete('services', 'data', 'db');
  await within('the deleted service', async () => (await dig(server, ['db.data.svc.cluster.local'])).status === 'NXDOMAIN');
});
