import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { ClosedError } from '../../lib/errors.js';
import type { RuleBackend } from '../../lib/rules/rule-backend.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { tcpConnects, tcpEcho, tcpRefused } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';

const blocks = { next: 180 };

/** A rules backend standing in for the kernel's tables: it counts removals, and can fail them. */
function countingRules(failClose?: string): RuleBackend & { closes: number } {
  const rules = {
    mode: 'iptables' as const,
    closes: 0,
    start: async () => {},
    sync: async () => {},
    render: () => '',
    close: async () => {
      rules.closes++;
      if (failClose !== undefined) throw new Error(failClose);
    },
  };
  return rules;
}

/** An agent serving one TCP service from a fresh manifest directory, with the given rules backend; destroyed in teardown. */
async function agentWithService(t: ExecutionContext, rules?: RuleBackend): Promise<{ agent: Agent; host: string; port: number }> {
  const ip = loopbackBlock(blocks.next++);
  const pod = await tcpEcho(ip(101));
  t.teardown(() => pod.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-lifecycle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('echo', ip(1), [{ name: 'p', port: 7100 }]));
  await writeFile(path.join(dir, 'eps.yaml'), sliceYaml('echo', 'echo-0', [{ name: 'p', port: pod.port }], [{ ip: ip(101) }]));
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 10, syncPeriodMs: 60_000, minSyncPeriodMs: 0 },
    source: new ManifestSource({ paths: [dir] }),
    ...(rules ? { rules } : {}),
  });
  t.teardown(() => agent.destroy());
  await agent.start();
  // In a rules mode the listener is at a proxy port on --bind-address; otherwise at the portal.
  const st = agent.status()[0]!;
  return rules ? { agent, host: '127.0.0.1', port: st.proxyPort } : { agent, host: ip(1), port: 7100 };
}

test('close() returns the same promise when called again, and closes the listeners once', async (t) => {
  const rules = countingRules();
  const { agent, host, port } = await agentWithService(t, rules);
  t.true(await tcpConnects(host, port));
  const first = agent.close();
  const second = agent.close();
  t.is(second, first);
  await first;
  t.is(agent.close(), first, 'still the same promise once it has settled');
  t.true(await tcpRefused(host, port));
  t.is(rules.closes, 1);
});

test('close() that fails rejects every caller with the same error, naming the failure', async (t) => {
  const rules = countingRules('iptables-restore: exit status 4');
  const { agent } = await agentWithService(t, rules);
  const first = agent.close();
  const err = await t.throwsAsync(first);
  t.regex(err!.message, /iptables-restore: exit status 4/);
  t.is(await t.throwsAsync(agent.close()), err);
  t.is(rules.closes, 1);
});

test('start() after close() or destroy() is refused with ClosedError', async (t) => {
  const closed = await agentWithService(t);
  await closed.agent.close();
  const afterClose = await t.throwsAsync(closed.agent.start(), { instanceOf: ClosedError });
  t.is(afterClose!.code, 'KUP_ERR_CLOSED');
  t.is(afterClose!.message, 'agent is closed');
  t.true(await tcpRefused(closed.host, closed.port), 'nothing was opened again');

  const destroyed = await agentWithService(t);
  destroyed.agent.destroy();
  await t.throwsAsync(destroyed.agent.start(), { instanceOf: ClosedError });
  await destroyed.agent.close(); // resolves: nothing is left to close
  t.true(await tcpRefused(destroyed.host, destroyed.port));
});

test('drain() stops accepting and removes the rules, lets an established connection finish, and close() afterwards does not repeat its steps', async (t) => {
  const rules = countingRules();
  const { agent, host, port } = await agentWithService(t, rules);
  const client = net.connect({ host, port });
  t.teardown(() => client.destroy());
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const echoed = (text: string): Promise<string> =>
    new Promise((resolve) => {
      client.once('data', (d: Buffer) => resolve(d.toString()));
      client.write(text);
    });
  t.is(await echoed('before'), 'before');

  let drained = false;
  const draining = agent.drain(30_000).then(() => (drained = true));
  await waitFor('listener closed by drain', () => tcpRefused(host, port));
  t.true(agent.health().draining);
  t.is(rules.closes, 1, 'rules removed at the start of the drain');
  t.is(await echoed('during'), 'during', 'the established connection still works');
  t.false(drained, 'the drain waits for the connection');

  client.end();
  await draining;
  t.true(drained);
  await agent.close();
  t.is(rules.closes, 1, "close() reused the drain's removal of the rules");
});
