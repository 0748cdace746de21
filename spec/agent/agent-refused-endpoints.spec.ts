import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { ownListenersOf } from '../../lib/agent/own-listeners.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { tcpEcho, tcpRequest } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { captureLogLines } from '../helpers/log-capture.js';

const ip = loopbackBlock(244);

const logCapture = captureLogLines();
const logLines = logCapture.lines;
test.after.always(() => logCapture.close());

function slice(name: string, addresses: readonly string[], port: number): KubeObject {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true }, nodeName: 'node-a' })),
    ports: [{ name: 'p', port, protocol: 'TCP' }],
  };
}

test("metadata addresses, operator ranges and this node's own listeners from the API are refused, one warning per object, and never dialled", async (t) => {
  const echo = await tcpEcho(ip(101));
  t.teardown(() => echo.close());
  // Stands in for this node's health server: a listener the proxy must never hand to a client.
  const health = await tcpEcho(ip(5));
  t.teardown(() => health.close());

  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', {
    metadata: { namespace: 'default', name: 'web' },
    spec: { type: 'ClusterIP', clusterIP: ip(1), clusterIPs: [ip(1)], ports: [{ name: 'p', port: 7200, protocol: 'TCP' }] },
  });
  api.create('endpointslices', slice('web-metadata', [ip(101), '100.100.100.200', '168.63.129.16', '169.254.169.254', '10.123.4.5'], echo.port));
  api.create('endpointslices', slice('web-health', [ip(5)], health.port));

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const config = { bindAddress: '127.0.0.1', healthzBindAddress: `${ip(5)}:${health.port}`, metricsBindAddress: '' };
  let agent: Agent | undefined;
  const source = new KubeSource({
    kubeConfig,
    backoff: { initialMs: 50, maxMs: 400 },
    allowLoopbackEndpoints: true,
    refusedCidrs: ['10.123.0.0/16'],
    ownListeners: ownListenersOf(config, () => agent?.status()),
  });
  agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 200, minSyncPeriodMs: 0, nodeName: 'node-a' }, source });
  t.teardown(() => agent!.destroy());
  await agent.start();
  await waitFor('service open', () => agent!.status().some((s) => s.spn === 'default/web:p' && s.listening.length > 0));

  // A slice that points the Service at its own listener: a loop through the proxy.
  api.create('endpointslices', slice('web-loop', [ip(1)], 7200));
  const warned = (name: string): string[] => logLines.filter((l) => l.includes('refused endpoint addresses') && l.includes(`slice=default/${name} `));
  await waitFor('loop slice refused', () => warned('web-loop').length > 0);
  await agent.settled();

  for (let i = 0; i < 20; i++) t.is((await tcpRequest(ip(1), 7200, `req ${i}`)).toString(), `req ${i}`);
  const [web] = agent.status().filter((s) => s.spn === 'default/web:p');
  t.deepEqual(web!.endpoints, [`${ip(101)}:${echo.port}`]);
  t.is(web!.stats?.dialFailures, 0, 'no refused address was ever dialled');
  t.is(echo.count(), 20);
  t.is(health.count(), 0, 'the health listener was never reached through the proxy');

  t.is(warned('web-metadata').length, 1);
  t.regex(
    warned('web-metadata')[0]!,
    /100\.100\.100\.200 \(cloud metadata address \(Alibaba Cloud ECS metadata\)\), 168\.63\.129\.16 \(cloud metadata address \(Azure WireServer\)\), 169\.254\.169\.254 \(cloud metadata address \(instance metadata service\)\), 10\.123\.4\.5 \(refused by the operator \(10\.123\.0\.0\/16\)\)/,
  );
  t.is(warned('web-health').length, 1);
  t.regex(warned('web-health')[0]!, new RegExp(`${ip(5).replaceAll('.', '\\.')} \\(this node's own listener \\(port ${health.port}\\)\\)`));
  t.is(warned('web-loop').length, 1);
  t.regex(warned('web-loop')[0]!, /this node's own listener \(port 7200\)/);

  // An update that changes nothing refused does not warn again.
  api.update('endpointslices', slice('web-metadata', [ip(101), '100.100.100.200', '168.63.129.16', '169.254.169.254', '10.123.4.5'], echo.port));
  api.update('endpointslices', slice('web-health', [ip(5)], health.port));
  // Watch events arrive in order: once this one is applied, the updates before it have been seen.
  api.create('endpointslices', slice('web-marker', [ip(102)], echo.port));
  await waitFor('marker applied', () => agent!.status().some((s) => s.endpoints.includes(`${ip(102)}:${echo.port}`)));
  t.is(warned('web-metadata').length, 1);
  t.is(warned('web-health').length, 1);
});
