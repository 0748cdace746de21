// Small network helpers: readiness probes, the listening-socket census used by the start-up
// scenario, and the connect-and-echo check of many addresses. Loopback only.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves true once HOST:PORT accepts a TCP connection, false after timeoutMs. */
export async function waitTcp(host, port, timeoutMs = 15_000, isDead = () => false) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (isDead()) return false;
    if (await tryConnect(host, port, 1000)) return true;
    await sleep(50);
  }
  return false;
}

export function tryConnect(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** /proc/net/udp's notation of an IPv4 address and port: 0100007F:5DC1. */
function procHex(ip, port) {
  const b = ip.split('.').map(Number);
  const addr = ((b[3] << 24) | (b[2] << 16) | (b[1] << 8) | b[0]) >>> 0;
  return `${addr.toString(16).toUpperCase().padStart(8, '0')}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function udpBound(ip, port) {
  const want = procHex(ip, port);
  const text = fs.readFileSync('/proc/net/udp', 'latin1');
  return text.includes(` ${want} `);
}

export async function waitUdp(ip, port, timeoutMs = 15_000, isDead = () => false) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (isDead()) return false;
    if (udpBound(ip, port)) return true;
    await sleep(50);
  }
  return false;
}

/**
 * Number of TCP sockets listening in the /16 PREFIX (e.g. "127.100") on PORT. Asks the kernel
 * through ss(8) with the filter applied in the kernel: reading /proc/net/tcp would walk every
 * TIME_WAIT socket the earlier scenarios left and cost more than what is being measured.
 */
export function countListening(prefix, port) {
  const r = spawnSync('ss', ['-Hltn', `src ${prefix}.0.0/16 and sport = :${port}`], { encoding: 'latin1', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`ss failed: ${r.stderr}`);
  let n = 0;
  for (let i = r.stdout.indexOf('\n'); i >= 0; i = r.stdout.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Connects to every address (bounded concurrency), optionally sends one byte and waits for it to
 * come back (through a proxy to the echo backend). Returns { accepted, echoed, failed, sampleErrors }.
 */
export async function sweep(addresses, { echo = true, concurrency = 200, timeoutMs = 5000 } = {}) {
  let next = 0;
  let accepted = 0;
  let echoed = 0;
  let failed = 0;
  const sampleErrors = new Set();
  const one = ({ host, port }) =>
    new Promise((resolve) => {
      const s = net.connect({ host, port });
      let connected = false;
      const finish = (ok, why) => {
        clearTimeout(t);
        s.destroy();
        if (!ok) {
          failed++;
          if (sampleErrors.size < 5) sampleErrors.add(`${host}:${port} ${why}`);
        }
        resolve();
      };
      const t = setTimeout(() => finish(false, connected ? 'no echo' : 'connect timeout'), timeoutMs);
      s.once('connect', () => {
        connected = true;
        accepted++;
        if (!echo) return finish(true);
        s.write('p');
      });
      s.once('data', () => {
        echoed++;
        finish(true);
      });
      s.once('end', () => finish(false, 'closed'));
      s.once('error', (err) => finish(false, err.code ?? err.message));
    });
  const worker = async () => {
    while (next < addresses.length) await one(addresses[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, addresses.length) }, worker));
  return { accepted, echoed, failed, sampleErrors: [...sampleErrors] };
}
