import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEMO_PODS, startPod } from './pods.js';
import type { Pod } from './pods.js';

// `npm start`: three pods on 127.0.0.1 and the proxy in front of them, fed from the manifests in
// this folder. Ctrl-C stops all of it.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const manifests = `${root}examples/hostnames`;
const cli = `${root}dist/bin/kube-userspace-proxy.js`;

const pods: Pod[] = [];
try {
  for (const p of DEMO_PODS) pods.push(await startPod(p.name, '127.0.0.1', p.port));
} catch (err) {
  process.stderr.write(`demo: cannot start the example pods: ${(err as Error).message}\n(is another demo still running? the pods use ports 9376-9378)\n`);
  await Promise.all(pods.map((p) => p.close()));
  process.exit(1);
}

// The names too, from the DNS server: port 1053 needs no root and stays clear of a resolver on 53.
const DNS = { host: '127.0.0.1', port: 1053 };
const NAME = 'hostnames.default.svc.cluster.local';
const proxy = spawn(
  process.execPath,
  [cli, '--manifests', manifests, '--bind-address', '127.0.0.1', '--healthz-bind-address', '127.0.0.1:10256', '--dns-bind-address', `${DNS.host}:${DNS.port}`, '--log-format', 'text'],
  { stdio: ['ignore', 'inherit', 'inherit'] },
);
let stopping = false;

async function stop(code: number): Promise<never> {
  stopping = true;
  if (proxy.exitCode === null && proxy.signalCode === null) {
    proxy.kill('SIGTERM');
    await new Promise((resolve) => proxy.once('exit', resolve));
  }
  await Promise.all(pods.map((p) => p.close()));
  process.exit(code);
}

proxy.on('exit', (code) => {
  if (!stopping) {
    process.stderr.write(`demo: the proxy exited (code ${code}); stopping the pods\n`);
    void stop(code ?? 1);
  }
});
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

// Tell the user how to reach it once the listener is up.
const deadline = Date.now() + 30_000;
for (;;) {
  const up = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: 8080 }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
  if (up || stopping) break;
  if (Date.now() > deadline) {
    process.stderr.write('demo: the proxy did not start listening on 127.0.0.1:8080 within 30 s\n');
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write(`
The hostnames service is up: three pods (${DEMO_PODS.map((p) => `${p.name} on 127.0.0.1:${p.port}`).join(', ')}).
  TCP:  curl http://127.0.0.1:8080/        (run it three times: three different pods answer)
  UDP:  echo hi | socat - UDP:127.0.0.1:8081   (or: echo hi | nc -u -w1 127.0.0.1 8081)
  DNS:  dig @${DNS.host} -p ${DNS.port} ${NAME}
        (the ClusterIP from service.yaml, as a pod would get it; the ports by name:
         dig @${DNS.host} -p ${DNS.port} _http._tcp.${NAME} SRV)
Edit examples/hostnames/*.yaml while it runs: changes apply within a second.
Press Ctrl-C to stop.
`);
