import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { parseStatusArgs, runStatus, statusUsage } from '../../lib/cli/status-command.js';
import { InvalidConfigError } from '../../lib/errors.js';
import type { StatusDocument } from '../../lib/server/status-document.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { freePort, tcpEcho, tcpRequest, udpEcho } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';
import { startHealthServer, startMetricsServer, startProxy } from '../server/fixture.js';

const ip = loopbackBlock(73);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function status(argv: string[], timeoutMs?: number): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } };
  const code = await runStatus(argv, io, timeoutMs === undefined ? {} : { timeoutMs });
  return { code, stdout, stderr };
}

/** A running agent with two known services, some traffic, and its metrics server. */
async function knownAgent(t: ExecutionContext, h: { web: number; dns: number; webEndpoint: number; dnsEndpoint: number }): Promise<string> {
  // Fixed ports on this file's own loopback addresses (each test its own), so that the table is known exactly.
  const web = await tcpEcho(ip(h.webEndpoint), 9376);
  const dns = await udpEcho(ip(h.dnsEndpoint), 9376);
  t.teardown(() => web.close());
  t.teardown(() => dns.close());
  const { agent } = await startProxy(t, {
    'web.yaml': serviceYaml('web', ip(h.web), [{ name: 'http', port: 8080 }], { affinityTimeout: 300 }),
    'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: 9376 }], [{ ip: ip(h.webEndpoint) }]),
    'dns.yaml': serviceYaml('dns', ip(h.dns), [{ name: 'dns', port: 5353, protocol: 'UDP' }]),
    'dns-slice.yaml': sliceYaml('dns', 'dns-1', [{ name: 'dns', port: 9376, protocol: 'UDP' }], [{ ip: ip(h.dnsEndpoint) }]),
  });
  await tcpRequest(ip(h.web), 8080, 'one');
  await tcpRequest(ip(h.web), 8080, 'two');
  const client = dgram.createSocket('udp4');
  t.teardown(() => client.close());
  const reply = new Promise((resolve) => client.once('message', resolve));
  client.send('hi', 5353, ip(h.dns));
  await reply;
  const { address } = await startMetricsServer(t, agent, false);
  return address;
}

test('prints the table of the running agent', async (t) => {
  const address = await knownAgent(t, { web: 1, dns: 2, webEndpoint: 10, dnsEndpoint: 11 });
  // The TCP connections have ended once their echoes came back; the forwarder's close may lag a tick.
  const run = await waitFor('no active TCP connection', async () => {
    const r = await status(['--metrics-address', address]);
    return r.stdout.includes(`${ip(10)}:9376 0 `) ? r : undefined;
  });
  t.is(run.code, 0);
  t.is(run.stderr, '');
  t.is(
    run.stdout.replace(/last sync \S+/, 'last sync <time>'),
    [
      'kube-userspace-proxy: redirect none, healthy, last sync <time>',
      '2 services, 2 service ports, 2 endpoints',
      'Prot Service port      Portals          ProxyPort Scheduler Affinity',
      '  -> Endpoint          ActiveConn TotalConn Failures',
      'UDP  default/dns:dns   127.77.73.2:5353 -         rr        None',
      '  -> 127.77.73.11:9376 1          1         0',
      'TCP  default/web:http  127.77.73.1:8080 -         rr        ClientIP 300s',
      '  -> 127.77.73.10:9376 0          2         0',
      '',
    ].join('\n'),
  );
});

test('--output json prints the JSON of /status for scripts', async (t) => {
  const address = await knownAgent(t, { web: 3, dns: 4, webEndpoint: 12, dnsEndpoint: 13 });
  for (const argv of [['--output', 'json'], ['--output=json'], ['-o', 'json']]) {
    const run = await status([...argv, `--metrics-address=${address}`]);
    t.is(run.code, 0);
    t.true(run.stdout.endsWith('}\n'));
    const doc = JSON.parse(run.stdout) as StatusDocument;
    t.is(doc.redirectMode, 'none');
    t.true(doc.healthy);
    t.deepEqual(doc.counts, { services: 2, servicePorts: 2, endpoints: 2 });
    t.deepEqual(
      doc.servicePorts.map((sp) => [sp.servicePort, sp.protocol, sp.portals, sp.affinity, sp.endpoints.map((e) => [e.endpoint, e.total])]),
      [
        ['default/dns:dns', 'UDP', [`${ip(4)}:5353`], { type: 'None', timeoutSeconds: 10800 }, [[`${ip(13)}:9376`, 1]]],
        ['default/web:http', 'TCP', [`${ip(3)}:8080`], { type: 'ClientIP', timeoutSeconds: 300 }, [[`${ip(12)}:9376`, 2]]],
      ],
    );
  }
});

test('an agent that is not running: one clear line and exit 1', async (t) => {
  const port = await freePort();
  const run = await status(['--metrics-address', `127.0.0.1:${port}`]);
  t.is(run.code, 1);
  t.is(run.stdout, '');
  t.is(
    run.stderr,
    `kube-userspace-proxy status: cannot reach the agent at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} (is it running, with --metrics-bind-address 127.0.0.1:${port}?)\n`,
  );
});

test('an address that does not answer in time: one line and exit 1', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const { port } = silent.address() as AddressInfo;
  const run = await status(['--metrics-address', `127.0.0.1:${port}`], 300);
  t.is(run.code, 1);
  t.regex(run.stderr, new RegExp(`^kube-userspace-proxy status: cannot reach the agent at 127\\.0\\.0\\.1:${port}: no answer within 300 ms .*\\n$`));
});

test('something else at that address: HTTP errors and non-status answers are one line and exit 1', async (t) => {
  const idle = {
    status: () => [],
    health: () => ({ healthy: true, reasons: [], lastUpdatedMs: 0, draining: false }),
    counts: () => ({ services: 0, servicePorts: 0, endpoints: 0 }),
    redirectMode: 'none',
    sourceHealth: () => undefined,
  };
  const health = await startHealthServer(t, idle);
  const h = health.server.address()!;
  const notFound = await status(['--metrics-address', `${h.host}:${h.port}`]);
  t.is(notFound.code, 1);
  t.is(notFound.stderr, `kube-userspace-proxy status: the agent at ${h.host}:${h.port} answered HTTP 404 for /status\n`);

  const other = http.createServer((_req, res) => res.end('<html>hello</html>'));
  await new Promise<void>((resolve) => other.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        other.close(() => resolve());
        other.closeAllConnections();
      }),
  );
  const { port } = other.address() as AddressInfo;
  const html = await status(['--metrics-address', `127.0.0.1:${port}`]);
  t.is(html.code, 1);
  t.is(html.stderr, `kube-userspace-proxy status: the answer of 127.0.0.1:${port}/status is not a status document (is 127.0.0.1:${port} the metrics address of kube-userspace-proxy?)\n`);
});

test('bad arguments: every problem, the usage, and exit 2; --help prints the usage', async (t) => {
  const run = await status(['--output', 'yaml', '--bogus', 'extra', '--metrics-address', 'nope']);
  t.is(run.code, 2);
  t.is(run.stdout, '');
  t.is(
    run.stderr,
    [
      'kube-userspace-proxy status: --output: must be text or json, got "yaml"',
      'kube-userspace-proxy status: unknown flag --bogus',
      'kube-userspace-proxy status: unexpected argument "extra"',
      'kube-userspace-proxy status: --metrics-address: missing ":PORT", got "nope"; expected HOST:PORT, e.g. 127.0.0.1:10249 or [::1]:10249',
      '',
      statusUsage(),
      '',
    ].join('\n'),
  );
  const help = await status(['--help']);
  t.is(help.code, 0);
  t.is(help.stdout, `${statusUsage()}\n`);
  t.regex(help.stdout, /^Usage: kube-userspace-proxy status \[--metrics-address HOST:PORT\] \[--output text\|json\]$/m);
});

test('argument parsing: defaults, both flag forms, a flag missing its value', (t) => {
  t.deepEqual(parseStatusArgs([]), { address: { host: '127.0.0.1', port: 10249 }, output: 'text', help: false });
  t.deepEqual(parseStatusArgs(['--metrics-address=[::1]:9000', '-o', 'json']), { address: { host: '::1', port: 9000 }, output: 'json', help: false });
  const err = t.throws(() => parseStatusArgs(['--metrics-address']), { instanceOf: InvalidConfigError });
  t.deepEqual(err?.problems, ['--metrics-address needs a value']);
});

test("the agent's own flag name --metrics-bind-address is taken too; giving both is one problem", (t) => {
  t.deepEqual(parseStatusArgs(['--metrics-bind-address', '127.0.0.2:9001']), { address: { host: '127.0.0.2', port: 9001 }, output: 'text', help: false });
  t.deepEqual(parseStatusArgs(['--metrics-bind-address=[::1]:9002']).address, { host: '::1', port: 9002 });
  const both = t.throws(() => parseStatusArgs(['--metrics-address', '127.0.0.1:1', '--metrics-bind-address', '127.0.0.1:2']), { instanceOf: InvalidConfigError });
  t.deepEqual(both?.problems, ['--metrics-bind-address and --metrics-address are the same setting: give one']);
  const bad = t.throws(() => parseStatusArgs(['--metrics-bind-address', 'nope']), { instanceOf: InvalidConfigError });
  t.regex(bad!.problems[0]!, /^--metrics-bind-address: missing ":PORT", got "nope"/);
});

test('a mistyped flag names the nearest one; -h is --help', (t) => {
  const err = t.throws(() => parseStatusArgs(['--metrics-adress', '127.0.0.1:1', '--outptu', 'json']), { instanceOf: InvalidConfigError });
  t.deepEqual(err?.problems, [
    'unknown flag --metrics-adress; did you mean --metrics-address?',
    'unexpected argument "127.0.0.1:1"',
    'unknown flag --outptu; did you mean --output?',
    'unexpected argument "json"',
  ]);
  t.true(parseStatusArgs(['-h']).help);
});
