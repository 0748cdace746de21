import type { Topology } from './netns.js';

/**
 * Real clients run inside a namespace: `curl` for HTTP, `socat` for UDP and raw TCP. Each throws
 * with what the tool said when the exchange fails, so a waitFor reports the last reason.
 */

/** GETs http://ip:port/ from namespace `ns` with curl; resolves with the body. */
export async function httpGet(topo: Topology, ns: string, ip: string, port: number, timeoutS = 3): Promise<string> {
  const r = await topo.exec(ns, ['curl', '-gsS', '--max-time', String(timeoutS), `http://${hostPort(ip, port)}/`], { timeoutMs: (timeoutS + 2) * 1000 });
  if (r.code !== 0) throw new Error(`curl ${ip}:${port} from ${ns}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return r.stdout.trim();
}

/**
 * Sends one UDP datagram to ip:port from namespace `ns` with socat (a fresh source port, so a
 * new proxy session each time) and resolves with the reply; socat waits `waitS` for it.
 */
export async function udpAsk(topo: Topology, ns: string, ip: string, port: number, waitS = 1): Promise<string> {
  const r = await topo.exec(ns, ['socat', '-t', String(waitS), '-', udpAddress(ip, port)], { input: 'q\n', timeoutMs: (waitS + 3) * 1000 });
  if (r.code !== 0) throw new Error(`socat udp ${ip}:${port} from ${ns}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  const reply = r.stdout.trim();
  if (reply === '') throw new Error(`socat udp ${ip}:${port} from ${ns}: no reply within ${waitS} s`);
  return reply;
}

/** Connects to ip:port from namespace `ns` with socat and resolves with what the server wrote before closing. */
export async function tcpText(topo: Topology, ns: string, ip: string, port: number, timeoutS = 3): Promise<string> {
  const r = await topo.exec(ns, ['socat', '-T', String(timeoutS), '-', `TCP4:${ip}:${port},connect-timeout=${timeoutS}`], { timeoutMs: (timeoutS + 2) * 1000 });
  if (r.code !== 0) throw new Error(`socat tcp ${ip}:${port} from ${ns}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return r.stdout.trim();
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function udpAddress(ip: string, port: number): string {
  return ip.includes(':') ? `UDP6:[${ip}]:${port}` : `UDP4:${ip}:${port}`;
}

/**
 * Connects to ip:port with socat, expecting the connection to be refused (a RST, or an ICMP port
 * unreachable, answering the SYN), and resolves true. Throws with what happened otherwise. Not
 * curl: curl 7.88 reports a refusal and a connection accepted then reset at once alike ("Couldn't
 * connect to server"); socat's blocking connect() fails with "Connection refused" only when the
 * handshake itself was refused.
 */
export async function tcpRefused(topo: Topology, ns: string, ip: string, port: number, timeoutS = 3): Promise<true> {
  const address = ip.includes(':') ? `TCP6:[${ip}]:${port}` : `TCP4:${ip}:${port}`;
  const r = await topo.exec(ns, ['socat', '-T', String(timeoutS), '-', address], { timeoutMs: (timeoutS + 2) * 1000 });
  if (r.code !== 0 && /connect\(.*Connection refused/i.test(r.stderr)) return true;
  throw new Error(`socat tcp ${ip}:${port} from ${ns}: expected "connection refused", got exit code ${r.code}: ${r.stderr.trim() || `output ${JSON.stringify(r.stdout.trim())}`}`);
}

/**
 * Sends a datagram to ip:port from a connected UDP socket (socat), expecting an ICMP port
 * unreachable: the kernel reports it to the socket as ECONNREFUSED and socat fails with
 * "Connection refused". A datagram silently dropped shows as socat waiting out `waitS` and exiting 0.
 */
export async function udpRefused(topo: Topology, ns: string, ip: string, port: number, waitS = 2): Promise<true> {
  const r = await topo.exec(ns, ['socat', '-t', String(waitS), '-', udpAddress(ip, port)], { input: 'q\n', timeoutMs: (waitS + 3) * 1000 });
  if (r.code !== 0 && /Connection refused/i.test(r.stderr)) return true;
  throw new Error(`socat udp ${ip}:${port} from ${ns}: expected "Connection refused", got exit code ${r.code}: ${r.stderr.trim() || `reply ${JSON.stringify(r.stdout.trim())}`}`);
}
