import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createNetns, netnsSupport, netnsTestIf, tempDir } from '../helpers/netns.js';
import { CLI, START_TIMEOUT_MS } from '../helpers/process.js';
import { execCommand, SYSTEM_PATH } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait-for.js';
import { spawn } from 'node:child_process';

const netnsTest = netnsTestIf(await netnsSupport());

const MANIFEST = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.7.10
  externalIPs: [10.50.7.1]
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30780}
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints: [{addresses: ["10.1.7.2"]}]
`;

// Proxy ports differ between runs (drawn from the range at random); the rules must not otherwise.
function normalise(lines: string[]): string[] {
  return lines.map((l) => l.replace(/\b4100[01]\b/g, 'P')).sort();
}

netnsTest('--dry-run prints exactly the iptables rules the agent installs, without root or changes', async (t) => {
  const ns = await createNetns(t);
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'web.yaml'), MANIFEST);
  const flags = ['--manifests', dir, '--redirect', 'iptables', '--proxy-port-range', '41000-41001', '--log-level', 'warn', '--healthz-bind-address=', '--metrics-bind-address='];

  const dry = await execCommand(['ip', 'netns', 'exec', ns.name, process.execPath, CLI, '--dry-run', ...flags]);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^# kube-userspace-proxy --dry-run: the iptables rules for 2 service port\(s\); nothing was changed\./);
  t.deepEqual(
    (await ns.sh('iptables-save')).split('\n').filter((l) => l.includes('KUBE-')),
    [],
    'the dry run changed nothing',
  );

  const agent = spawn('ip', ['netns', 'exec', ns.name, process.execPath, CLI, ...flags.map((f) => (f === 'warn' ? 'info' : f)), '--log-format', 'json'], {
    env: { ...process.env, PATH: SYSTEM_PATH },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  agent.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise((resolve) => agent.on('exit', resolve));
  t.teardown(async () => {
    agent.kill('SIGTERM');
    await exited;
  });
  await waitFor('rules synced', () => log.includes('"rules synced"'), START_TIMEOUT_MS);

  const installed = (await ns.sh('iptables-save')).split('\n').filter((l) => /^-A KUBE-/.test(l));
  // iptables-save shows the IPv4 tables; the dry run's IPv6 section goes to ip6tables.
  const printed = dry.stdout
    .split('# ip6tables-restore')[0]!
    .split('\n')
    .filter((l) => /^-A KUBE-/.test(l));
  t.true(installed.length >= 6, `installed ${installed.length} rules`);
  t.deepEqual(normalise(printed), normalise(installed));
});
