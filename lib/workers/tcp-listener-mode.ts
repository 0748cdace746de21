import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { InvalidConfigError } from '../errors.js';
import { NativeListener } from '../internals/tcp-native-listener.js';

/**
 * How worker processes accept on a TCP service port.
 *
 * - `reuse-port`: every process binds the port itself with SO_REUSEPORT, so each has a listening
 *   socket and an accept queue of its own, and the kernel spreads new connections over them (by a
 *   hash of the 4-tuple). No process wakes for a connection another one takes, and no listening
 *   handle crosses the IPC channel. Needs `reusePort` in `net.Server.listen()` (Node >= 22.12), or
 *   the native TCP addon, whose listeners bind with SO_REUSEPORT on any Node version (a port on
 *   the native data path listens natively, see TcpProxySocketOptions.nativeAccept).
 * - `shared-handle`: this process binds the port and sends the listening handle to every worker,
 *   so all processes accept from one queue. Works on every Node version.
 */
export type TcpListenerMode = 'reuse-port' | 'shared-handle';

/** What a WorkerPool is asked for: `auto` is `reuse-port` where the probe finds it, else `shared-handle`. */
export type TcpListenerModeOption = TcpListenerMode | 'auto';

let probed: Promise<boolean> | undefined;

/**
 * Whether this Node binds TCP listeners with SO_REUSEPORT when asked: two servers bind the same
 * loopback port with `reusePort`. Older Node versions ignore the option, so the second bind fails
 * with EADDRINUSE; a kernel without SO_REUSEPORT fails it too. Asked once per process.
 */
export function reusePortSupported(): Promise<boolean> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<boolean> {
  const first = net.createServer();
  const second = net.createServer();
  try {
    await listenReusingPort(first, 0);
    await listenReusingPort(second, (first.address() as AddressInfo).port);
    return true;
  } catch {
    return false;
  } finally {
    for (const server of [first, second]) if (server.listening) server.close();
  }
}

function listenReusingPort(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // reusePort is unknown to the Node 20 typings, hence the widened options object.
    const options: net.ListenOptions = { host: '127.0.0.1', port, ...{ reusePort: true } };
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Whether the native TCP addon's listeners bind with SO_REUSEPORT here: two bind the same loopback
 * port with it. False where this process has no addon.
 */
export function nativeReusePortSupported(): boolean {
  const options = { ipv6Only: false, reusePort: true, backlog: 1, wantsPeers: false };
  const owner = { accepted: (): void => {} };
  const first = NativeListener.listen('127.0.0.1', 0, options, owner);
  if (!(first instanceof NativeListener)) return false;
  const second = NativeListener.listen('127.0.0.1', first.address()?.port ?? 0, options, owner);
  first.close();
  if (!(second instanceof NativeListener)) return false;
  second.close();
  return true;
}

/** The mode a pool uses: `auto` probes; `reuse-port` where the probe says no is a configuration error. */
export async function resolveTcpListenerMode(option: TcpListenerModeOption): Promise<TcpListenerMode> {
  if (option === 'shared-handle') return option;
  const supported = nativeReusePortSupported() || (await reusePortSupported());
  if (supported) return 'reuse-port';
  if (option === 'auto') return 'shared-handle';
  throw new InvalidConfigError([`workers: tcpListeners 'reuse-port' needs SO_REUSEPORT in net.Server.listen() (Node >= 22.12) or the native TCP addon; this is Node ${process.versions.node}`]);
}
