import os from 'node:os';
import type { Config } from '../config/config.js';
import type { OwnListener } from '../source/endpoint-address-filter.js';
import type { PortStatus } from './agent.js';

/**
 * This node's own listeners on its own addresses, for the endpoint filter: the health and metrics
 * servers, and the open proxy listeners (their proxy ports in the rules modes, or the addresses they
 * listen on directly). A wildcard bind address stands for every address of the machine.
 *
 * Read once per turn of the event loop: a list of thousands of slices is converted in one turn, and
 * reading the agent's ports for each would be quadratic; a proxy port opened since is seen by the
 * next slice that arrives.
 */
export function ownListenersOf(config: Pick<Config, 'healthzBindAddress' | 'metricsBindAddress' | 'bindAddress'>, ports: () => readonly PortStatus[] | undefined): () => readonly OwnListener[] {
  let cached: readonly OwnListener[] | undefined;
  return () => {
    if (cached) return cached;
    const local = localAddresses();
    const out: OwnListener[] = [];
    const add = (host: string, port: number): void => {
      if (port <= 0) return;
      for (const address of isWildcard(host) ? local : [host]) out.push({ address, port });
    };
    for (const hostPort of [config.healthzBindAddress, config.metricsBindAddress]) {
      const parsed = splitHostPort(hostPort);
      if (parsed) add(parsed.host, parsed.port);
    }
    for (const st of ports() ?? []) {
      for (const l of st.listening) add(l.host, l.port);
      if (st.proxyPort > 0) add(config.bindAddress, st.proxyPort);
    }
    cached = out;
    setImmediate(() => (cached = undefined)).unref();
    return out;
  };
}

function localAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

function isWildcard(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** `HOST:PORT`, `[V6]:PORT` or `:PORT`; undefined for '' (server off) or what is not one. */
function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()(.*):(\d+)$/.exec(text);
  if (!m) return undefined;
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}
