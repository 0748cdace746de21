import net from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { tcpRefused, udpRequest } from '../helpers/backends.js';
import { ROOT, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

// The quick start: `npm start` runs this demo. It uses fixed ports (8080, 8081, 9376-9378 on
// 127.0.0.1) because the README tells users to curl them.
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

  demo.child.kill('SIGINT');
  t.is(await demo.exited, 0);
  for (const port of [8080, 9376, 9377, 9378]) t.true(await tcpRefused('127.0.0.1', port), `port ${port} closed`);
});
