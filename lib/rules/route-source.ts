import { parseIP } from '../model/ip-address.js';
import type { CommandRunner } from './command-runner.js';
import { requireSystemBinary } from './command-runner.js';

/**
 * The source address the kernel picks for packets to `destination` (`ip route get DEST` → `src X`), or
 * undefined when there is no route or no source.
 *
 * This is the right RuleContext.hostIPv4/hostIPv6 for the iptables backend (pass a ClusterIP, or any
 * address reached through the default route): node-originated traffic to a portal leaves with this
 * source; the HOST chains DNAT it to the host IP; the proxy's UDP socket, bound to the any-address,
 * answers from the address the kernel picks for the reply — the client's own address, i.e. this one.
 * Conntrack un-NATs the reply back to the portal only if it comes from the DNAT target, so with any
 * other host IP UDP clients get replies from `hostIP:proxyPort` and drop them (TCP is unaffected: an
 * accepted socket answers from the address it was reached at). The legacy proxier's
 * ChooseHostInterface (the default route's interface) was an approximation of this.
 */
export async function routeSourceAddress(runner: CommandRunner, destination: string): Promise<string | undefined> {
  const ip = await requireSystemBinary('ip');
  const result = await runner([ip, '-o', 'route', 'get', destination]);
  if (result.code !== 0) return undefined;
  const match = /\bsrc (\S+)/.exec(result.stdout);
  return match ? parseIP(match[1]!)?.address : undefined;
}
