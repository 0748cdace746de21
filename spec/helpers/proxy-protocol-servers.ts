import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { freePort, tcpConnects } from './backends.js';
import { waitFor } from './wait-for.js';

/**
 * Real PROXY-protocol-aware HTTP servers on loopback, each answering every request with the
 * client and destination the PROXY header announced, as `src:port dst:port`.
 */
export interface ProxyAwareServer {
  readonly name: string;
  /** Listening on 127.0.0.1 and [::1], expecting a PROXY header (v1 or v2) first. */
  readonly port4: number;
  readonly port6: number;
}

/** Whether the server's binary is installed (the tests are skipped without it, except with CI=true). */
export function installed(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

async function run(t: ExecutionContext, name: string, command: string, args: string[], dir: string, port4: number, port6: number): Promise<ProxyAwareServer> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  t.teardown(async () => {
    if (!exited) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (!exited) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  });
  await waitFor(
    `${name} listening`,
    async () => {
      if (exited) throw new Error(`${name} exited: ${stderr.trim()}`);
      return (await tcpConnects('127.0.0.1', port4)) && (await tcpConnects('::1', port6));
    },
    15_000,
    50,
  );
  return { name, port4, port6 };
}

/** nginx (`listen ... proxy_protocol`), answering with $proxy_protocol_addr and friends */
export async function startNginx(t: ExecutionContext): Promise<ProxyAwareServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-nginx-'));
  const port4 = await freePort('127.0.0.1');
  const port6 = await freePort('::1');
  const conf = `
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port4} proxy_protocol;
    listen [::1]:${port6} proxy_protocol;
    location / {
      default_type text/plain;
      return 200 "$proxy_protocol_addr:$proxy_protocol_port $proxy_protocol_server_addr:$proxy_protocol_server_port";
    }
  }
}
`;
  await writeFile(path.join(dir, 'nginx.conf'), conf);
  return run(t, 'nginx', 'nginx', ['-p', dir, '-e', 'stderr', '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'], dir, port4, port6);
}

/** HAProxy (`bind ... accept-proxy`), answering with %[src]:%[src_port] %[dst]:%[dst_port] */
export async function startHaproxy(t: ExecutionContext): Promise<ProxyAwareServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-haproxy-'));
  const port4 = await freePort('127.0.0.1');
  const port6 = await freePort('::1');
  const conf = `
global
  maxconn 256
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend proxied
  bind 127.0.0.1:${port4} accept-proxy
  bind [::1]:${port6} accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port] %[dst]:%[dst_port]"
`;
  await writeFile(path.join(dir, 'haproxy.cfg'), conf);
  return run(t, 'haproxy', 'haproxy', ['-f', path.join(dir, 'haproxy.cfg'), '-db'], dir, port4, port6);
}
