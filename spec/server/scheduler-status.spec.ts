import test from 'ava';
import { formatStatusTable } from '../../lib/cli/status-table.js';
import type { StatusDocument } from '../../lib/server/status-document.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml } from '../helpers/agent-fixture.js';
import { get, sample, startMetricsServer, startProxy } from './fixture.js';

const ip = loopbackBlock(229);

function annotated(name: string, host: string, scheduler: string): string {
  return serviceYaml(name, host, [{ name: 'http', port: 8080 }]).replace(/^(  namespace: .*)$/m, `$1\n  annotations:\n    kube-userspace-proxy.io/scheduler: ${scheduler}`);
}

test('the scheduler shows in /status, in the status table and as a metric label', async (t) => {
  const { agent } = await startProxy(t, {
    'mh.yaml': annotated('hashed', ip(1), 'mh'),
    'rr.yaml': serviceYaml('plain', ip(2), [{ name: 'http', port: 8080 }]),
  });
  const { url } = await startMetricsServer(t, agent, false);
  const doc = JSON.parse((await get(`${url}/status`)).body) as StatusDocument;
  const byName = new Map(doc.servicePorts.map((sp) => [sp.servicePort, sp.scheduler]));
  t.is(byName.get('default/hashed:http'), 'mh');
  t.is(byName.get('default/plain:http'), 'rr');
  const table = formatStatusTable(doc);
  t.regex(table, /^TCP\s+default\/hashed:http\s+\S+\s+\S+\s+mh\s/m);
  const metrics = (await get(`${url}/metrics`)).body;
  const labels = { namespace: 'default', service: 'hashed', port: 'http', protocol: 'TCP', scheduler: 'mh' };
  t.is(sample(metrics, 'kube_userspace_proxy_service_port_scheduler_info', labels), 1);
  t.is(sample(metrics, 'kube_userspace_proxy_service_port_scheduler_info', { ...labels, service: 'plain', scheduler: 'rr' }), 1);
});
