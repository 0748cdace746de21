import type { Config } from '../config/config.js';
import { logger } from '../log.js';
import { KernelPortAllocator } from '../proxy/kernel-port-allocator.js';
import type { PortAllocator } from '../proxy/port-allocator.js';
import { RangePortAllocator } from '../proxy/range-port-allocator.js';
import type { AddressAssigner } from '../rules/address-assigner.js';
import { resolveSystemBinary, spawnRunner } from '../rules/command-runner.js';
import type { CommandRunner } from '../rules/command-runner.js';
import { requireNetAdmin } from '../rules/privileges.js';
import { redirectModeName } from '../rules/redirect-mode-name.js';
import type { RuleBackend } from '../rules/rule-backend.js';

const log = logger('main');

/** The parts of the agent that decide how portal traffic reaches the listeners. */
export interface Redirect {
  /** What is logged: `iptables`, `nftables`, `none`, `none --assign-service-ips=lo`. */
  readonly mode: string;
  readonly rules: RuleBackend | undefined;
  readonly assigner: AddressAssigner | undefined;
  readonly allocator: PortAllocator;
}

/**
 * Builds the redirect parts for --redirect. `auto` picks iptables if it works here, else nftables,
 * else none with --assign-service-ips; the modes that change the network stack need root and say
 * so at once in one line.
 */
export async function redirectFor(config: Config, runner: CommandRunner = spawnRunner()): Promise<Redirect> {
  let mode = config.redirect;
  let iface = config.assignServiceIPs;
  if (mode === 'auto') {
    requireNetAdmin('--redirect auto', 'use --redirect none');
    if (await works(runner, 'iptables', ['-w', '5', '-t', 'nat', '-S'])) mode = 'iptables';
    else if (await works(runner, 'nft', ['list', 'tables'])) mode = 'nftables';
    else {
      mode = 'none';
      iface ??= 'lo';
    }
  }
  const allocator = config.proxyPortRange ? new RangePortAllocator(config.proxyPortRange) : new KernelPortAllocator();
  let rules: RuleBackend | undefined;
  let assigner: AddressAssigner | undefined;
  // Each backend's modules load only in its mode: with --redirect none, the iptables and nftables
  // renderers and parsers (about 30 ms of CPU) would load while manifests are parsed at start-up.
  if (mode === 'iptables') rules = new (await import('../rules/iptables-rules.js')).IptablesRules({ runner });
  else if (mode === 'nftables') rules = new (await import('../rules/nftables-rules.js')).NftablesRules({ runner });
  else if (iface !== undefined) {
    requireNetAdmin('--assign-service-ips', 'leave it out and give services local cluster IPs');
    assigner = new (await import('../rules/address-assigner.js')).AddressAssigner({ runner, interface: iface });
  }
  const redirect: Redirect = { mode: redirectModeName(rules, assigner), rules, assigner, allocator };
  log.info('redirect mode', { mode: redirect.mode, requested: config.redirect });
  return redirect;
}

async function works(runner: CommandRunner, name: string, args: string[]): Promise<boolean> {
  const path = await resolveSystemBinary(name);
  if (!path) return false;
  const result = await runner([path, ...args]);
  return result.code === 0;
}
