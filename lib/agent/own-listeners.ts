import os from 'node:os';
import type { Config } from '../config/config.js';
import type { OwnListener, OwnListeners } from '../source/endpoint-address-filter.js';
import type { PortStatus } from './agent.js';

/** What ownListenersOf reads of a proxy socket: PortStatus, or the cheaper PortListeners, whose ports say where it may listen. */
type ListenerSource = Pick<PortStatus, 'listening' | 'proxyPort'> & { readonly ports?: readonly number[] };

/**
 * This node's own listeners on its own addresses, for the endpoint filter: the health and metrics
 * servers, and the open proxy listeners (their proxy ports in the rules modes, or the addresses they
 * listen on directly). A wildcard bind address stands for every address of the machine.
 *
 * Read once per turn of the event loop: a list of thousands of slices is converted in one turn, and
 * reading the agent's ports for each would be quadratic; a proxy port opened since is seen by the
 * next slice that arrives. Asked for the listeners at a slice's ports, it reads the addresses only of
 * the sockets that may listen at one of them (found by port in an index made once per turn): with
 * 10,000 service ports, reading every socket's addresses for each new slice held a new Service's
 * endpoints back by hundreds of milliseconds.
 */
export function ownListenersOf(config: Pick<Config, 'healthzBindAddress' | 'metricsBindAddress' | 'bindAddress'>, ports: () => readonly ListenerSource[] | undefined): OwnListeners {
  let turn: { servers: OwnListener[]; byPort: Map<number, ListenerSource[]>; unindexed: ListenerSource[]; all?: OwnListener[] } | undefined;
  const local = (): string[] => localAddresses();
  const add = (out: OwnListener[], host: string, port: number, addresses: () => string[]): void => {
    if (port <= 0) return;
    for (const address of isWildcard(host) ? addresses() : [host]) out.push({ address, port });
  };
  const listenersOf = (out: OwnListener[], st: ListenerSource, addresses: () => string[]): void => {
    for (const l of st.listening) add(out, l.host, l.port, addresses);
    if (st.proxyPort > 0) add(out, config.bindAddress, st.proxyPort, addresses);
  };
  const read = (): NonNullable<typeof turn> => {
    if (turn) return turn;
    let addresses: string[] | undefined;
    const once = (): string[] => (addresses ??= local());
    const servers: OwnListener[] = [];
    for (const hostPort of [config.healthzBindAddress, config.metricsBindAddress]) {
      const parsed = splitHostPort(hostPort);
      if (parsed) add(servers, parsed.host, parsed.port, once);
    }
    const byPort = new Map<number, ListenerSource[]>();
    const unindexed: ListenerSource[] = [];
    for (const st of ports() ?? []) {
      if (st.ports === undefined) {
        unindexed.push(st);
        continue;
      }
      for (let i = 0; i < st.ports.length; i++) {
        const port = st.ports[i]!;
        if (port <= 0 || st.ports.indexOf(port) < i) continue;
        const list = byPort.get(port);
        if (list) list.push(st);
        else byPort.set(port, [st]);
      }
    }
    turn = { servers, byPort, unindexed };
    setImmediate(() => (turn = undefined)).unref();
    return turn;
  };
  return (atPorts) => {
    const t = read();
    let addresses: string[] | undefined;
    const once = (): string[] => (addresses ??= local());
    if (atPorts === undefined) {
      if (t.all) return t.all;
      const out = [...t.servers];
      for (const list of new Set([...t.byPort.values()].flat())) listenersOf(out, list, once);
      for (const st of t.unindexed) listenersOf(out, st, once);
      return (t.all = out);
    }
    const out = [...t.servers];
    const seen = new Set<ListenerSource>();
    for (const port of atPorts) {
      for (const st of t.byPort.get(port) ?? []) {
        if (seen.has(st)) continue;
        seen.add(st);
        listenersOf(out, st, once);
      }
    }
    for (const st of t.unindexed) listenersOf(out, st, once);
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
