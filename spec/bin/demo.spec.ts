import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { request } from 'undici';
import { tcpRefused, udpRequest } from '../helpers/backends.js';
import { ROOT, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

// The quick start: `npm start` runs this demo. It uses fixed ports (8080, 8081, 9376-9378 on
// 127.0.0.1, and 1053 for DNS) because the README tells users to curl and dig them.
test('the demo answers three different pod names over TCP, a name over UDP, and Ctrl-C leaves nothing running', async (t) => {
  const demo = spawnNode([`${ROOT}dist/examples/hostnames/demo.js`]);
  t.teardown(() => void demo.child.kill('SIGKILL'));
  await waitFor('demo ready', () => demo.stdout().includes('Press Ctrl-C to stop'), START_TIMEOUT_MS);
  t.regex(demo.stdout(), /curl http:\/\/127\.0\.0\.1:8080\//);

  const names = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const res = await request('http://127.0.0.1:8080/', { reset: true });
    names.add((await res.body.text()).trim());
  }
  t.deepEqual([...names].sort(), ['hostnames-a', 'hostnames-b', 'hostnames-c']);
  t.regex((await udpRequest('127.0.0.1', 8081, 'hi')).toString(), /^hostnames-[abc]\n$/);

  // The dig commands exactly as printed: the service name resolves to service.yaml's ClusterIP,
  // and the SRV record names the port.
  const digs = [...demo.stdout().matchAll(/^\s+(?:DNS:\s+)?(dig @\S+ -p \d+ \S+(?: SRV)?)\)?$/gm)].map((m) => m[1]!.split(' '));
  t.deepEqual(
    digs.map((d) => d.slice(1).join(' ')),
    ['@127.0.0.1 -p 1053 hostnames.default.svc.cluster.local', '@127.0.0.1 -p 1053 _http._tcp.hostnames.default.svc.cluster.local SRV'],
  );
  const run = async (cmd: string[]): Promise<string> => (await promisify(execFile)(cmd[0]!, [...cmd.slice(1), '+short', '+time=2', '+tries=2'])).stdout.trim();
  if (
    process.env['CI'] !== 'true' &&
    !(await run(['dig', '-v']).then(
      () => true,
      () => false,
    ))
  ) {
    t.log('dig is not installed: the printed dig commands were not run (CI installs bind9-dnsutils)');
  } else {
    t.is(await run(digs[0]!), '10.96.0.100');
    t.is(await run(digs[1]!), '0 100 8080 hostnames.default.svc.cluster.local.');
  }

  demo.child.kill('SIGINT');
  t.is(await demo.exited, 0);
  for (const port of [8080, 1053, 9376, 9377, 9378]) t.true(await tcpRefused('127.0.0.1', port), `port ${port} closed`);
});
