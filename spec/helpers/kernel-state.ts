import type { ExecResult, Topology } from './netns.js';

/**
 * What the project has put into one network namespace's kernel state: iptables rules of the
 * legacy KUBE-* chains (and the jumps to them), rules of the nft table(s) named
 * `kube-userspace-proxy*`, and which of a list of service IPs are assigned to an interface.
 * Used to check that updates leave nothing stale, restarts add no duplicates and exits leave
 * nothing behind.
 */
export interface KernelState {
  /** `ip|ip6/nft|legacy table chain` → rule lines (`-A ...`) of KUBE-* chains and of jumps to them. */
  readonly iptables: ReadonlyMap<string, readonly string[]>;
  /** KUBE-* chain declarations, as `ip|ip6/nft|legacy table chain`. */
  readonly iptablesChains: readonly string[];
  /** The project's nft tables, as `family name`. */
  readonly nftTables: readonly string[];
  /** `family table chain` → rules (expression JSON, counters zeroed); `family table set:NAME` → elements. */
  readonly nft: ReadonlyMap<string, readonly string[]>;
  /** The watched IPs that are assigned to an interface, as `ip dev`. */
  readonly addresses: readonly string[];
  /** The raw dumps, for failure messages. */
  readonly dump: string;
}

/** The nft tables of the project are named like this (a family-specific suffix is allowed). */
export const NFT_TABLE_PREFIX = 'kube-userspace-proxy';

/** Reads the project's rules, tables and (of `watchIPs`) assigned addresses in namespace `ns`. */
export async function kernelState(topo: Topology, ns: string, watchIPs: readonly string[]): Promise<KernelState> {
  // Both iptables flavours: the agent may pick iptables-legacy, whose rules iptables-nft-save
  // does not show (and the other way round). A flavour that is not installed (or, for IPv6, a
  // kernel without it) has nothing to show; its failure is kept in the dump only.
  const save = async ([family, flavour, binary]: readonly [string, string, string]): Promise<{ family: string; flavour: string; result: ExecResult }> => ({
    family,
    flavour,
    result: await topo.exec(ns, [binary]),
  });
  const saves = IPTABLES_SAVES.map(save);
  const [nftJson, nftText, addrs, ...saved] = await Promise.all([
    topo.exec(ns, ['nft', '-j', 'list', 'ruleset']),
    topo.exec(ns, ['nft', 'list', 'ruleset']),
    topo.exec(ns, ['ip', '-o', 'addr', 'show']),
    ...saves,
  ]);
  for (const [what, r] of [
    ['nft -j list ruleset', nftJson],
    ['ip addr', addrs],
  ] as const) {
    if (r.code !== 0) throw new Error(`${what} in ${ns} failed (code ${r.code}): ${r.stderr.trim()}`);
  }
  // A system with only the plain names (no -nft/-legacy variants).
  if (!saved.some((s) => s.family === 'ip' && s.result.code === 0)) saved.push(await save(['ip', 'plain', 'iptables-save']), await save(['ip6', 'plain', 'ip6tables-save']));
  if (!saved.some((s) => s.family === 'ip' && s.result.code === 0)) throw new Error(`no iptables-save works in ${ns}: ${saved.map((s) => s.result.stderr.trim()).join('; ')}`);
  const iptables = new Map<string, string[]>();
  const iptablesChains: string[] = [];
  for (const { family, flavour, result } of saved) if (result.code === 0) parseIptablesSave(`${family}/${flavour}`, result.stdout, iptables, iptablesChains);
  const { tables: nftTables, rules: nft } = parseNftJson(nftJson.stdout);
  const addresses = parseAddresses(addrs.stdout, watchIPs);
  const dump = [
    ...saved.filter((s) => s.result.code === 0 && /^(-A |:KUBE-)/m.test(s.result.stdout)).map((s) => `# ${s.family}tables-${s.flavour}-save\n${s.result.stdout}`),
    `# nft list ruleset\n${nftText.stdout}`,
    `# ip -o addr\n${addrs.stdout}`,
  ].join('\n');
  return { iptables, iptablesChains, nftTables, nft, addresses, dump };
}

const IPTABLES_SAVES: ReadonlyArray<readonly [family: string, flavour: string, binary: string]> = [
  ['ip', 'nft', 'iptables-nft-save'],
  ['ip', 'legacy', 'iptables-legacy-save'],
  ['ip6', 'nft', 'ip6tables-nft-save'],
  ['ip6', 'legacy', 'ip6tables-legacy-save'],
];

function parseIptablesSave(family: string, text: string, rules: Map<string, string[]>, chains: string[]): void {
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':KUBE-')) chains.push(`${family} ${table} ${line.slice(1).split(' ')[0]}`);
    else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1]!;
      if (chain.startsWith('KUBE-') || /\s-[jg] KUBE-/.test(line)) {
        const key = `${family} ${table} ${chain}`;
        rules.set(key, [...(rules.get(key) ?? []), line]);
      }
    }
  }
}

type NftObject = Record<string, Record<string, unknown>>;

function parseNftJson(text: string): { tables: string[]; rules: Map<string, string[]> } {
  const items = (JSON.parse(text) as { nftables: NftObject[] }).nftables;
  const tables: string[] = [];
  const rules = new Map<string, string[]>();
  const push = (key: string, value: string): void => void rules.set(key, [...(rules.get(key) ?? []), value]);
  for (const item of items) {
    const [kind, body] = Object.entries(item)[0]!;
    const family = String(body['family']);
    if (kind === 'table') {
      if (String(body['name']).startsWith(NFT_TABLE_PREFIX)) tables.push(`${family} ${String(body['name'])}`);
      continue;
    }
    const table = String(body['table']);
    if (!table.startsWith(NFT_TABLE_PREFIX)) continue;
    if (kind === 'chain') rules.set(`${family} ${table} ${String(body['name'])}`, rules.get(`${family} ${table} ${String(body['name'])}`) ?? []);
    else if (kind === 'rule') push(`${family} ${table} ${String(body['chain'])}`, JSON.stringify(body['expr'], zeroCounters));
    else if ((kind === 'set' || kind === 'map') && Array.isArray(body['elem'])) {
      for (const elem of body['elem']) push(`${family} ${table} ${kind}:${String(body['name'])}`, JSON.stringify(elem, zeroCounters));
    }
  }
  return { tables, rules };
}

/** Counters change with traffic; two rules that differ only in counters are the same rule. */
function zeroCounters(key: string, value: unknown): unknown {
  return key === 'counter' ? null : value;
}

function parseAddresses(text: string, watchIPs: readonly string[]): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    // "1: lo    inet 10.9.200.10/32 scope global lo ..."
    const m = /^\d+:\s+(\S+)\s+inet6?\s+([^/\s]+)/.exec(line);
    if (m && watchIPs.includes(m[2]!)) found.push(`${m[2]} ${m[1]}`);
  }
  return found;
}

/** Every project rule, chain declaration, table and set element, one per line. */
export function projectText(s: KernelState): string {
  return [...s.iptablesChains, ...[...s.iptables.values()].flat(), ...s.nftTables, ...[...s.nft.values()].flat()].join('\n');
}

/** What of the project is present: empty when nothing is left. */
export function leftovers(s: KernelState): string[] {
  const found: string[] = [];
  for (const c of s.iptablesChains) found.push(`iptables chain ${c}`);
  for (const [chain, rules] of s.iptables) if (!chain.includes(' KUBE-')) for (const r of rules) found.push(`iptables jump in ${chain}: ${r}`);
  for (const table of s.nftTables) found.push(`nft table ${table}`);
  for (const a of s.addresses) found.push(`address ${a}`);
  return found;
}

/** Rules that appear twice in the same chain (or elements twice in a set). */
export function duplicates(s: KernelState): string[] {
  const found: string[] = [];
  for (const [chain, rules] of [...s.iptables, ...s.nft]) {
    const seen = new Set<string>();
    for (const r of rules) {
      if (seen.has(r)) found.push(`${chain}: ${r}`);
      seen.add(r);
    }
  }
  const chains = new Set<string>();
  for (const c of s.iptablesChains) {
    if (chains.has(c)) found.push(`chain declared twice: ${c}`);
    chains.add(c);
  }
  return found;
}

/**
 * How many rules each project chain holds (and tables, chains, addresses): two states that
 * serve the same services have the same counts even though their proxy ports differ.
 */
export function shape(s: KernelState): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [chain, rules] of [...s.iptables, ...s.nft]) counts[chain] = rules.length;
  counts['iptables chains'] = s.iptablesChains.length;
  counts['nft tables'] = s.nftTables.length;
  counts['addresses'] = s.addresses.length;
  return counts;
}

/** Whether `text` names `ip` as a whole address (10.9.201.2 does not match 10.9.201.21). */
export function mentions(text: string, ip: string): boolean {
  return new RegExp(`(?<![\\d.])${ip.replaceAll('.', '\\.')}(?![\\d])`).test(text);
}

/** Lines of the project's rules that name `ip`. */
export function rulesMentioning(s: KernelState, ip: string): string[] {
  return projectText(s)
    .split('\n')
    .filter((l) => mentions(l, ip));
}
