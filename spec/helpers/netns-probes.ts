import type { Topology } from './netns.js';

/**
 * Real clients run inside a namespace: `curl` for HTTP, `socat` for UDP and raw TCP. Each throws
 * with what the tool said when the exchange fails, so a waitFor reports the last reason.
 */

/** GETs http://ip:port/ from namespace `ns` with curl; resolves with the body. */
export async function httpGet(topo: Topology, ns: string, ip: string, port: number, timeoutS = 3): Promise<string> {
  const r = await topo.exec(ns, ['curl', '-sS', '--max-time', String(timeoutS), `http://${ip}:${port}/`], { timeoutMs: (timeoutS + 2) * 1000 });
  if (r.code !== 0) throw new Error(`curl ${ip}:${port} from ${ns}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return r.stdout.trim();
}

/**
 * Sends one UDP datagram to ip:port from namespace `ns` with socat (a fresh source port, so a
 * new proxy session each time) and resolves with the reply; socat waits `waitS` for it.
 */
export async function udpAsk(topo: Topology, ns: string, ip: string, port: number, waitS = 1): Promise<string> {
  const r = await topo.exec(ns, ['socat', '-t', String(waitS), '-', `UDP4:${ip}:${port}`], { input: 'q\n', timeoutMs: (waitS + 3) * 1000 });
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
