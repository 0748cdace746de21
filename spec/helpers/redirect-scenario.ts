import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { sliceYaml } from './agent-fixture.js';
import { kernelState } from './kernel-state.js';
import type { KernelState } from './kernel-state.js';
import { createTopology } from './netns.js';
import type { NetnsProcess, Topology } from './netns.js';
import { httpGet } from './netns-probes.js';
import { CLI, ROOT } from './process.js';
import { waitFor } from './wait-for.js';

/** The pod script (compiled next to this file). */
export const BACKEND = `${ROOT}dist/spec/helpers/netns-backend.js`;

/** How long teardown waits for an agent to exit after SIGTERM before the topology kills it. */
const STOP_GRACE_MS = 5000;

/** Ports of the one Service `default/web` every scenario serves. */
export const PORTS = Object.freeze({
  http: 80,
  dns: 53,
  /** Added by an update. */
  alt: 8081,
  nodeHttp: 30080,
  nodeDns: 30053,
  podHttp: 8080,
  podDns: 5353,
});

export interface ServiceIPs {
  readonly cluster: string;
  readonly ext1: string;
  readonly ext2: string;
  readonly lb: string;
}

export interface ServiceShape {
  /** With the extra TCP port `alt`. */
  readonly alt?: boolean;
  readonly externalIPs: readonly string[];
}

/** The agent CLI running in the node namespace, with its JSON log lines. */
export interface AgentRun extends NetnsProcess {
  logs(): Array<Record<string, unknown>>;
  /** The last lines of its stderr, for failure messages. */
  tail(lines?: number): string;
}

/**
 * One test's world: a topology (see netns.ts), a backend in every pod, and a manifest directory
 * with the LoadBalancer Service `default/web` (ClusterIP, two externalIPs, one LB ingress IP, TCP
 * `http` 80→8080 with NodePort 30080, UDP `dns` 53→5353 with NodePort 30053) and one
 * EndpointSlice listing every pod.
 */
export interface Scenario {
  readonly topo: Topology;
  readonly dir: string;
  readonly ips: ServiceIPs;
  /** Every IP of the service, in any version of it. */
  readonly serviceIPs: readonly string[];
  readonly podNames: readonly string[];
  writeService(shape: ServiceShape): Promise<void>;
  /** Starts the agent with `flags` plus the manifests, a 0s min sync period and JSON info logs. */
  startAgent(flags: readonly string[]): AgentRun;
  /** Runs the CLI in the node namespace with exactly `args`. */
  runCli(args: readonly string[]): AgentRun;
  /** Resolves once pod-1 gets an answer from ClusterIP:80; rejects at once if the agent exits. */
  serving(agent: AgentRun, timeoutMs?: number): Promise<void>;
  /** The node's kernel state (project rules, tables, and which service IPs are assigned). */
  state(): Promise<KernelState>;
}

export async function createScenario(t: ExecutionContext, block: number): Promise<Scenario> {
  const topo = await createTopology(t, { block, pods: 3 });
  const ips: ServiceIPs = { cluster: topo.addr(200, 10), ext1: topo.addr(201, 21), ext2: topo.addr(201, 22), lb: topo.addr(202, 10) };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-netns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const write = async (name: string, text: string): Promise<void> => {
    const tmp = path.join(dir, `.${name}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, path.join(dir, name));
  };

  const backends = topo.pods.map((pod) => topo.spawnNode(pod.ns, [BACKEND, '--name', pod.name, '--host', pod.ip, '--tcp', String(PORTS.podHttp), '--udp', String(PORTS.podDns)]));
  await Promise.all(
    backends.map((b) =>
      waitFor(
        `backend in ${b.ns} ready`,
        () => {
          if (b.hasExited()) throw new Error(`backend exited: ${b.stderr()}`);
          return b.stdout().includes('"ready":true');
        },
        30_000,
      ),
    ),
  );

  const writeService = (shape: ServiceShape): Promise<void> => write('service.yaml', serviceManifest(ips, shape));
  await writeService({ externalIPs: [ips.ext1, ips.ext2] });
  await write(
    'endpointslice.yaml',
    sliceYaml(
      'web',
      'web-pods',
      [
        { name: 'http', port: PORTS.podHttp },
        { name: 'dns', port: PORTS.podDns, protocol: 'UDP' },
        { name: 'alt', port: PORTS.podHttp },
      ],
      topo.pods.map((p) => ({ ip: p.ip })),
    ),
  );

  const runCli = (args: readonly string[]): AgentRun => {
    const p = topo.spawnNode(topo.node, [CLI, ...args]);
    const tail = (lines = 40): string => p.stderr().trim().split('\n').slice(-lines).join('\n');
    // Stop gracefully first, so that the agent removes what it recorded outside the namespace
    // (the assigned-address state file); the topology's teardown kills whatever is still running.
    t.teardown(async () => {
      if (p.hasExited()) return;
      p.child.kill('SIGTERM');
      await Promise.race([p.exited, new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
    });
    t.teardown(() => {
      if (!t.passed) t.log(`${args.join(' ')} (pid ${p.child.pid}) stderr:\n${tail()}`);
    });
    return {
      ...p,
      tail,
      logs: () =>
        p
          .stderr()
          .split('\n')
          .flatMap((line) => {
            try {
              return [JSON.parse(line) as Record<string, unknown>];
            } catch {
              return [];
            }
          }),
    };
  };

  return {
    topo,
    dir,
    ips,
    serviceIPs: [ips.cluster, ips.ext1, ips.ext2, ips.lb],
    podNames: topo.pods.map((p) => p.name),
    writeService,
    startAgent: (flags) => runCli([...flags, '--manifests', dir, '--min-sync-period', '0s', '--log-format', 'json', '--log-level', 'info']),
    runCli,
    // Generous: on a loaded machine starting the agent and its workers alone can take tens of seconds.
    serving: async (agent, timeoutMs = 60_000) => {
      let stop = false;
      const exited = agent.exited.then((code) => {
        if (!stop) throw new Error(`the agent exited (${code}) before serving:\n${agent.tail()}`);
      });
      try {
        await Promise.race([waitFor(`pod-1 reaching ${ips.cluster}:${PORTS.http}`, () => httpGet(topo, topo.pods[0]!.ns, ips.cluster, PORTS.http, 2), timeoutMs, 200), exited]);
      } catch (err) {
        // What the node looked like then: the rules, and what listened.
        const state = await kernelState(topo, topo.node, [ips.cluster, ips.ext1, ips.ext2, ips.lb]).catch(() => undefined);
        const listening = await topo.exec(topo.node, ['ss', '-Hltnup']);
        throw new Error(`${(err as Error).message}\nnode state:\n${state?.dump ?? '(unavailable)'}\nlisteners:\n${listening.stdout}`, { cause: err });
      } finally {
        stop = true;
      }
    },
    state: () => kernelState(topo, topo.node, [ips.cluster, ips.ext1, ips.ext2, ips.lb]),
  };
}

function serviceManifest(ips: ServiceIPs, shape: ServiceShape): string {
  const ports = [
    { name: 'http', protocol: 'TCP', port: PORTS.http, targetPort: PORTS.podHttp, nodePort: PORTS.nodeHttp },
    { name: 'dns', protocol: 'UDP', port: PORTS.dns, targetPort: PORTS.podDns, nodePort: PORTS.nodeDns },
    ...(shape.alt ? [{ name: 'alt', protocol: 'TCP', port: PORTS.alt, targetPort: PORTS.podHttp }] : []),
  ];
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    '  name: web',
    '  namespace: default',
    'spec:',
    '  type: LoadBalancer',
    `  clusterIP: "${ips.cluster}"`,
    `  externalIPs: [${shape.externalIPs.map((ip) => `"${ip}"`).join(', ')}]`,
    '  ports:',
    ...ports.flatMap((p) => [
      `    - name: ${p.name}`,
      `      protocol: ${p.protocol}`,
      `      port: ${p.port}`,
      `      targetPort: ${p.targetPort}`,
      ...('nodePort' in p ? [`      nodePort: ${p.nodePort}`] : []),
    ]),
    'status:',
    '  loadBalancer:',
    '    ingress:',
    `      - ip: "${ips.lb}"`,
    '',
  ].join('\n');
}
