/**
 * The redirect modes on a real network: a node namespace runs the CLI; pods, the node itself and
 * a client node reach the Service through iptables rules, nftables rules, or service IPs assigned
 * to the node (`--redirect none --assign-service-ips`). See spec/helpers/netns.ts for the
 * topology and spec/helpers/redirect-scenario.ts for the Service.
 *
 * These tests need root and `ip netns`. Elsewhere they are skipped with a message, except when
 * CI=true: there they must run.
 */
import type { ExecutionContext } from 'ava';
import { duplicates, leftovers, projectText, rulesMentioning, shape } from '../helpers/kernel-state.js';
import type { KernelState } from '../helpers/kernel-state.js';
import { createTopology, netnsSupport, netnsTestIf } from '../helpers/netns.js';
import type { Pod } from '../helpers/netns.js';
import { httpGet, tcpText, udpAsk } from '../helpers/netns-probes.js';
import { BACKEND, PORTS, createScenario } from '../helpers/redirect-scenario.js';
import type { AgentRun } from '../helpers/redirect-scenario.js';
import { waitFor } from '../helpers/wait-for.js';

const TOOLS = ['iptables', 'iptables-save', 'nft', 'curl', 'socat', 'sysctl', 'ss'];
const support = await netnsSupport(TOOLS);
const nsTest = netnsTestIf(support, 'redirect-mode tests');

interface Mode {
  readonly title: string;
  readonly flags: readonly string[];
  /** The `mode` field of the `redirect mode` start log line. */
  readonly logged: string;
  /** How portals are captured: by rules (iptables-save / nft) or by addresses on the node. */
  readonly capture: 'rules' | 'addresses';
}

const MODES: readonly Mode[] = [
  { title: 'iptables', flags: ['--redirect', 'iptables'], logged: 'iptables', capture: 'rules' },
  { title: 'nftables', flags: ['--redirect', 'nftables'], logged: 'nftables', capture: 'rules' },
  { title: 'none --assign-service-ips', flags: ['--redirect', 'none', '--assign-service-ips'], logged: 'none --assign-service-ips=lo', capture: 'addresses' },
  // The same paths with a worker process accepting on the proxy ports and holding UDP sessions.
  { title: 'iptables --workers 2', flags: ['--redirect', 'iptables', '--workers', '2'], logged: 'iptables', capture: 'rules' },
];

/**
 * A manifest change reaches the rules within one sync: the watcher's debounce plus one sync with
 * --min-sync-period 0s. Generous, because these tests run beside each other on small CI machines.
 */
const SYNC_DEADLINE_MS = 10_000;

/** Second octet of each test's addresses (10.X.*): one block per test, never shared. */
const HARNESS_BLOCK = 110;
const blockOf = (mode: number, test: number): number => 120 + mode * 10 + test;

/** Runs `fn`; on failure records `what` and the reason, and goes on (one run reports every broken path). */
async function attempt<T>(t: ExecutionContext, what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    t.fail(`${what}: ${(err as Error).message}`);
    return undefined;
  }
}

function precondition(t: ExecutionContext): boolean {
  if (support.ok) return true;
  t.fail(`CI=true but the redirect-mode tests cannot run: ${support.reason}`);
  return false;
}

/** Whether the state captures `ip`: by a rule naming it, or by it being assigned to an interface. */
function captures(mode: Mode, s: KernelState, ip: string): boolean {
  return mode.capture === 'rules' ? rulesMentioning(s, ip).length > 0 : s.addresses.some((a) => a.startsWith(`${ip} `));
}

/** The exit code (or signal) of `p`, or a description when it is still running after timeoutMs. */
function exitWithin(p: AgentRun, timeoutMs: number): Promise<number | string> {
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve(`still running after ${timeoutMs} ms`), timeoutMs).unref());
  return Promise.race([p.exited, timeout]);
}

function stopWith(agent: AgentRun, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<number | string> {
  agent.child.kill(signal);
  return exitWithin(agent, timeoutMs);
}

nsTest('harness: pods and the client node are routed through the node, and hand-written REDIRECT/DNAT rules work there', async (t) => {
  if (!precondition(t)) return;
  const topo = await createTopology(t, { block: HARNESS_BLOCK, pods: 2 });
  const [pod1, pod2] = topo.pods as readonly [Pod, Pod];
  const backend = topo.spawnNode(pod1.ns, [BACKEND, '--name', pod1.name, '--host', pod1.ip, '--tcp', '8080', '--udp', '5353']);
  await waitFor('backend ready', () => backend.stdout().includes('"ready":true'), 30_000);

  t.is(await httpGet(topo, topo.client, pod1.ip, 8080), 'pod-1', 'client node → node → pod (TCP)');
  t.is(await udpAsk(topo, pod2.ns, pod1.ip, 5353), 'pod-1', 'pod → node → pod (UDP)');
  t.is(await httpGet(topo, topo.node, pod1.ip, 8080), 'pod-1', 'node → pod');

  // A listener on the node and a virtual IP that exists nowhere: only the rules make it reachable.
  const vip = topo.addr(200, 10);
  const vip2 = topo.addr(200, 11);
  const listener = topo.spawn(topo.node, ['socat', 'TCP4-LISTEN:7777,fork,reuseaddr', 'SYSTEM:echo redirected']);
  await waitFor('socat listening on the node', async () => (await topo.run(topo.node, ['ss', '-Hltn', 'sport = :7777'])).includes('7777'), 5000, 50);
  await topo.run(topo.node, ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-d', `${vip}/32`, '-p', 'tcp', '--dport', '80', '-j', 'REDIRECT', '--to-ports', '7777']);
  await topo.run(topo.node, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-d', `${vip}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${topo.nodeIP}:7777`]);
  t.is(await tcpText(topo, pod2.ns, vip, 80), 'redirected', 'pod → iptables REDIRECT on the node');
  t.is(await tcpText(topo, topo.client, vip, 80), 'redirected', 'client node → iptables REDIRECT on the node');
  t.is(await tcpText(topo, topo.node, vip, 80), 'redirected', 'node → iptables DNAT to the host IP');

  await topo.run(topo.node, [
    'nft',
    `add table ip kup-harness; add chain ip kup-harness pre { type nat hook prerouting priority dstnat; }; add rule ip kup-harness pre ip daddr ${vip2} tcp dport 80 redirect to :7777`,
  ]);
  t.is(await tcpText(topo, topo.client, vip2, 80), 'redirected', 'client node → nft redirect on the node');
  t.false(listener.hasExited());
});

for (const [m, mode] of MODES.entries()) {
  nsTest(`${mode.title}: pods, the node and a client node reach the service over TCP and UDP`, async (t) => {
    if (!precondition(t)) return;
    const started = Date.now();
    const s = await createScenario(t, blockOf(m, 1));
    const { topo, ips } = s;
    const agent = s.startAgent(mode.flags);
    await attempt(t, 'the agent serving pod-1', () => s.serving(agent));

    const logged = agent.logs().find((l) => l['message'] === 'redirect mode');
    t.is(logged?.['mode'], mode.logged, `a JSON log line {"message":"redirect mode","mode":"${mode.logged}"} at start`);

    const isPod = (name: string | undefined): boolean => name !== undefined && s.podNames.includes(name);
    const tcp: Array<string | undefined> = [];
    for (let i = 0; i < 6; i++) {
      const pod = topo.pods[i % topo.pods.length]!;
      tcp.push(await attempt(t, `TCP from ${pod.name} to ClusterIP`, () => httpGet(topo, pod.ns, ips.cluster, PORTS.http)));
    }
    t.true(tcp.every(isPod), `every TCP request answered by a pod: ${tcp.join(', ')}`);
    t.true(new Set(tcp).size > 1, `TCP requests balanced over the pods: ${tcp.join(', ')}`);

    await attempt(t, 'UDP from pod-1 to ClusterIP', () => waitFor('a UDP reply', () => udpAsk(topo, topo.pods[0]!.ns, ips.cluster, PORTS.dns), 5000, 200));
    const udp = await Promise.all(topo.pods.flatMap((pod) => [pod, pod]).map((pod) => attempt(t, `UDP from ${pod.name} to ClusterIP`, () => udpAsk(topo, pod.ns, ips.cluster, PORTS.dns))));
    t.true(udp.every(isPod), `every UDP datagram answered by a pod: ${udp.join(', ')}`);
    t.true(new Set(udp).size > 1, `UDP sessions balanced over the pods: ${udp.join(', ')}`);

    const probes: Array<[string, () => Promise<string>]> = [
      ['TCP from the node to ClusterIP', () => httpGet(topo, topo.node, ips.cluster, PORTS.http)],
      ['UDP from the node to ClusterIP', () => udpAsk(topo, topo.node, ips.cluster, PORTS.dns)],
      ['TCP from the client node to the NodePort on the node IP', () => httpGet(topo, topo.client, topo.nodeIP, PORTS.nodeHttp)],
      ['UDP from the client node to the NodePort on the node IP', () => udpAsk(topo, topo.client, topo.nodeIP, PORTS.nodeDns)],
      ['TCP from the client node to externalIP 1', () => httpGet(topo, topo.client, ips.ext1, PORTS.http)],
      ['TCP from the client node to externalIP 2', () => httpGet(topo, topo.client, ips.ext2, PORTS.http)],
      ['UDP from the client node to externalIP 1', () => udpAsk(topo, topo.client, ips.ext1, PORTS.dns)],
      ['TCP from the client node to the LoadBalancer ingress IP', () => httpGet(topo, topo.client, ips.lb, PORTS.http)],
    ];
    for (const [what, probe] of probes) {
      const answer = await attempt(t, what, () => waitFor(what, probe, 5000, 200));
      if (answer !== undefined) t.true(isPod(answer), `${what}: answered by a pod, got ${answer}`);
    }

    // Each mode captures portals its own way and only that way.
    const state = await s.state();
    for (const ip of s.serviceIPs) t.true(captures(mode, state, ip), `${ip} is captured (${mode.capture})\n${state.dump}`);
    if (mode.capture === 'rules') t.deepEqual(state.addresses, [], 'no service IP is assigned in a rules mode');
    else t.is(projectText(state), '', 'no rules or tables in the assigned-IP mode');
    t.deepEqual(duplicates(state), [], 'no duplicate rule');
    t.log(`${mode.title}: ${Date.now() - started} ms`);
  });

  nsTest(`${mode.title}: a service update changes the capture within one sync and leaves nothing stale`, async (t) => {
    if (!precondition(t)) return;
    const started = Date.now();
    const s = await createScenario(t, blockOf(m, 2));
    const { topo, ips } = s;
    const agent = s.startAgent(mode.flags);
    await s.serving(agent);
    const before = await s.state();
    t.true(captures(mode, before, ips.ext2), `externalIP 2 captured before the update\n${before.dump}`);

    await s.writeService({ alt: true, externalIPs: [ips.ext1] });
    const hasAlt = (st: KernelState): boolean => (mode.capture === 'rules' ? rulesMentioning(st, ips.cluster).some((l) => /\b8081\b/.test(l)) : true);
    const after = await attempt(t, 'the update applied (port alt captured, externalIP 2 released)', () =>
      waitFor(
        'the update',
        async () => {
          await httpGet(topo, topo.pods[1]!.ns, ips.cluster, PORTS.alt, 1);
          const st = await s.state();
          if (!hasAlt(st)) throw new Error(`no rule for ${ips.cluster}:${PORTS.alt}`);
          const stale = [...rulesMentioning(st, ips.ext2), ...st.addresses.filter((a) => a.startsWith(`${ips.ext2} `))];
          if (stale.length > 0) throw new Error(`${ips.ext2} still captured: ${stale.join('; ')}`);
          return st;
        },
        SYNC_DEADLINE_MS,
        200,
      ),
    );
    if (!after) {
      t.log((await s.state()).dump);
      return;
    }
    t.deepEqual(rulesMentioning(after, ips.ext2), [], 'no rule names the removed externalIP');
    t.false(
      after.addresses.some((a) => a.startsWith(`${ips.ext2} `)),
      'the removed externalIP is not assigned',
    );
    for (const ip of [ips.cluster, ips.ext1, ips.lb]) t.true(captures(mode, after, ip), `${ip} still captured`);
    t.deepEqual(duplicates(after), [], 'no duplicate rule after the update');
    if (mode.capture === 'addresses') {
      const listeners = await topo.run(topo.node, ['ss', '-Hlntu']);
      t.regex(listeners, new RegExp(`${ips.cluster.replaceAll('.', '\\.')}:${PORTS.alt}\\b`), 'a listener on ClusterIP:alt');
      t.notRegex(listeners, new RegExp(`${ips.ext2.replaceAll('.', '\\.')}:`), 'no listener on the removed externalIP');
    }
    const viaExt1 = await attempt(t, 'client node to externalIP 1', () => httpGet(topo, topo.client, ips.ext1, PORTS.http));
    if (viaExt1 !== undefined) t.true(s.podNames.includes(viaExt1), `externalIP 1 still answered by a pod, got ${viaExt1}`);
    await t.throwsAsync(httpGet(topo, topo.client, ips.ext2, PORTS.http, 1), undefined, 'the removed externalIP no longer answers');

    // Nothing stale: a fresh agent for the updated service builds exactly the same capture.
    t.is(await stopWith(agent, 'SIGTERM'), 0, 'SIGTERM exits 0');
    const fresh = s.startAgent(mode.flags);
    await s.serving(fresh);
    const freshState = await waitFor(
      'the fresh agent capturing port alt',
      async () => {
        await httpGet(topo, topo.pods[0]!.ns, ips.cluster, PORTS.alt, 1);
        const st = await s.state();
        if (!hasAlt(st)) throw new Error(`no rule for ${ips.cluster}:${PORTS.alt}`);
        return st;
      },
      SYNC_DEADLINE_MS,
      200,
    );
    t.deepEqual(shape(after), shape(freshState), 'the updated capture equals a fresh one');
    t.log(`${mode.title}: ${Date.now() - started} ms`);
  });

  nsTest(`${mode.title}: SIGTERM, kill -9 with a restart, and --cleanup leave nothing behind`, async (t) => {
    if (!precondition(t)) return;
    const started = Date.now();
    const s = await createScenario(t, blockOf(m, 3));
    t.deepEqual(leftovers(await s.state()), [], 'a clean node before the first start');

    // 1. A run killed with -9 leaves its capture; a restart replaces it without duplicates.
    const first = s.startAgent(mode.flags);
    await s.serving(first);
    const running = await s.state();
    t.not(leftovers(running).length, 0, `the running agent's capture is visible\n${running.dump}`);
    t.is(await stopWith(first, 'SIGKILL'), 'SIGKILL');
    const killed = await s.state();
    t.not(leftovers(killed).length, 0, 'kill -9 leaves the capture behind (or this test proves nothing)');

    const second = s.startAgent(mode.flags);
    await s.serving(second);
    const restarted = await attempt(t, 'the restarted agent has the same capture as the first run', () =>
      waitFor(
        'the same capture',
        async () => {
          const st = await s.state();
          const now = JSON.stringify(shape(st));
          if (now !== JSON.stringify(shape(running))) throw new Error(`rules per chain ${now}, the first run had ${JSON.stringify(shape(running))}`);
          return st;
        },
        SYNC_DEADLINE_MS,
        200,
      ),
    );
    const now = restarted ?? (await s.state());
    t.deepEqual(shape(now), shape(running), `rules per chain after the restart equal the first run's\n${now.dump}`);
    t.deepEqual(duplicates(now), [], 'no duplicate rule or jump after the restart');

    // 2. SIGTERM removes everything, including what the killed run had left.
    t.is(await stopWith(second, 'SIGTERM'), 0, 'SIGTERM exits 0');
    const stopped = await s.state();
    t.deepEqual(leftovers(stopped), [], `nothing left after SIGTERM\n${stopped.dump}`);

    // 3. --cleanup removes what a killed run left, and exits 0.
    const third = s.startAgent(mode.flags);
    await s.serving(third);
    t.is(await stopWith(third, 'SIGKILL'), 'SIGKILL');
    t.not(leftovers(await s.state()).length, 0, 'kill -9 leaves the capture behind');
    const cleanup = s.runCli([...mode.flags, '--cleanup', '--log-format', 'json']);
    t.is(await exitWithin(cleanup, 15_000), 0, `--cleanup exits 0:\n${cleanup.tail()}`);
    const cleaned = await s.state();
    t.deepEqual(leftovers(cleaned), [], `nothing left after --cleanup\n${cleaned.dump}`);
    t.log(`${mode.title}: ${Date.now() - started} ms`);
  });
}
