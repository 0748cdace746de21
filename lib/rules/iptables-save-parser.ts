/**
 * A reader for `iptables-save` and `iptables -S CHAIN` output: which chains each table declares and
 * each rule's chain and spec (the text after `-A CHAIN `). Rule specs are kept verbatim, because
 * iptables-restore's `-D CHAIN spec` deletes a rule only when spec is exactly what iptables-save prints.
 */

export interface SavedRule {
  readonly chain: string;
  /** Everything after `-A CHAIN `. */
  readonly spec: string;
}

export interface SavedTable {
  readonly name: string;
  /** Every chain declared (`:CHAIN POLICY [p:b]` lines), built-in and user-defined. */
  readonly chains: readonly string[];
  readonly rules: readonly SavedRule[];
}

/** Parses full iptables-save output into its tables (keyed by name). */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, { name: string; chains: string[]; rules: SavedRule[] }>();
  let current: { name: string; chains: string[]; rules: SavedRule[] } | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { name: line.slice(1).trim(), chains: [], rules: [] };
      tables.set(current.name, current);
    } else if (!current) {
      continue;
    } else if (line.startsWith(':')) {
      current.chains.push(line.slice(1).split(' ')[0]!);
    } else if (line.startsWith('-A ')) {
      const rule = parseRuleLine(line);
      if (rule) current.rules.push(rule);
    } else if (line.startsWith('COMMIT')) {
      current = undefined;
    }
  }
  return tables;
}

/** Parses `iptables -S CHAIN` output: its `-A` lines (the `-P`/`-N` lines are dropped). */
export function parseChainListing(text: string): SavedRule[] {
  const rules: SavedRule[] = [];
  for (const line of text.split('\n')) {
    const rule = line.startsWith('-A ') ? parseRuleLine(line) : undefined;
    if (rule) rules.push(rule);
  }
  return rules;
}

/** The chain a rule jumps or goes to (`-j X` / `-g X`), when it is one of `chains`. */
export function jumpTarget(spec: string, chains: readonly string[]): string | undefined {
  const match = /(?:^|\s)-[jg]\s+(\S+)/.exec(spec);
  return match && chains.includes(match[1]!) ? match[1] : undefined;
}

function parseRuleLine(line: string): SavedRule | undefined {
  const match = /^-A (\S+) (.*)$/.exec(line.trimEnd());
  return match ? { chain: match[1]!, spec: match[2]! } : undefined;
}
