/** One line of a rules excerpt; `mine` when it names the service port itself. */
export interface ExcerptLine {
  readonly line: string;
  readonly mine: boolean;
}

/**
 * The lines of the rendered rules that a packet to this service port meets: the ones naming it
 * (iptables rules, nftables map elements), the jumps into their chains and the rules that look up
 * their maps, under their table and family headers. The whole text follows, folded.
 */
export function rulesExcerpt(rules: string, spn: string): ExcerptLine[] {
  // Each family's transaction (a `#` header) has its own chains and maps.
  const sections: string[][] = [];
  for (const l of rules.replace(/\n$/, '').split('\n')) {
    if (l.startsWith('#') || sections.length === 0) sections.push([]);
    sections[sections.length - 1]!.push(l);
  }
  return sections.flatMap((lines) => sectionExcerpt(lines, spn));
}

function sectionExcerpt(lines: readonly string[], spn: string): ExcerptLine[] {
  const chains = new Set<string>();
  const maps = new Set<string>();
  let block: string | undefined;
  for (const l of lines) {
    const opened = /^\s*(?:map|set) (\S+) \{/.exec(l);
    if (opened) block = opened[1];
    else if (l === '\t}') block = undefined;
    if (!l.includes(spn)) continue;
    const chain = /^-A (\S+)/.exec(l)?.[1];
    if (chain !== undefined) chains.add(chain);
    else if (block !== undefined) maps.add(block);
  }
  const header = (l: string): '#' | '*' | 'c' | undefined => (l.startsWith('#') ? '#' : l.startsWith('*') || l.startsWith('table ') ? '*' : /^\s*chain \S+ \{/.test(l) ? 'c' : undefined);
  const kept: ExcerptLine[] = [];
  for (const l of lines) {
    const mine = l.includes(spn);
    const jump = /-j (\S+)\s*$/.exec(l)?.[1];
    const t = l.trim();
    const lookup = [...maps].some((m) => l.includes(`@${m}`) || t === `map ${m} {` || t === `set ${m} {`);
    if (mine || header(l) !== undefined || (jump !== undefined && chains.has(jump)) || lookup) kept.push({ line: l, mine });
  }
  // Drop headers with nothing of this port under them.
  const out: ExcerptLine[] = [];
  let since = { '#': false, '*': false, c: false };
  for (let i = kept.length - 1; i >= 0; i--) {
    const k = kept[i]!;
    const level = header(k.line);
    if (level === undefined) {
      since = { '#': true, '*': true, c: true };
      out.push(k);
    } else if (since[level]) {
      out.push(k);
      if (level === '#') since = { '#': false, '*': false, c: false };
      else if (level === '*') since = { ...since, '*': false, c: false };
      else since.c = false;
    }
  }
  return out.reverse();
}
