import test from 'ava';
import { ownListenersOf } from '../../lib/agent/own-listeners.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { startProxy } from '../server/fixture.js';

const ip = loopbackBlock(76);

function keys(list: Iterable<{ address: string; port: number }>): string[] {
  return [...list].map((l) => `${l.address}:${l.port}`).sort();
}

test("asked for a slice's ports, the agent's listeners give exactly the own listeners at those ports that status() gives", async (t) => {
  const { agent } = await startProxy(t, {
    'a.yaml': serviceYaml('a', ip(1), [{ name: 'http', port: 7200 }]),
    'a-slice.yaml': sliceYaml('a', 'a-1', [{ name: 'http', port: 9 }], [{ ip: ip(10) }]),
    'b.yaml': serviceYaml('b', ip(2), [{ name: 'dns', port: 7300, protocol: 'UDP' }]),
    'b-slice.yaml': sliceYaml('b', 'b-1', [{ name: 'dns', port: 9, protocol: 'UDP' }], [{ ip: ip(10) }]),
  });
  const config = { bindAddress: '127.0.0.1', healthzBindAddress: `${ip(5)}:7400`, metricsBindAddress: '' };
  const fromStatus = ownListenersOf(config, () => agent.status());
  const fromListeners = ownListenersOf(config, () => agent.listeners());
  for (const ports of [new Set([7200]), new Set([7300, 9]), new Set([9999]), undefined]) {
    const want = keys([...fromStatus()].filter((l) => ports === undefined || ports.has(l.port) || l.port === 7400));
    t.deepEqual(keys(fromListeners(ports)), want, `ports ${ports ? [...ports].join(',') : 'any'}`);
  }
  t.deepEqual(keys(fromListeners(new Set([7200]))), [`${ip(1)}:7200`, `${ip(5)}:7400`]);
  t.deepEqual(keys(fromListeners(new Set([9999]))), [`${ip(5)}:7400`], 'the health server is always there');
});
