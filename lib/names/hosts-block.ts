/** One hosts-file line: an address and its names, the canonical one first. */
export interface HostsEntry {
  readonly ip: string;
  readonly names: readonly string[];
}

/** The marker lines around the block this project owns; a line starting with BEGIN_MARKER opens it. */
export const BEGIN_MARKER = '# BEGIN kube-userspace-proxy';
export const END_MARKER = '# END kube-userspace-proxy';
const BEGIN_LINE = `${BEGIN_MARKER}: names of the Services it serves; rewritten while it runs, removed when it stops`;

/** The block for these entries, marker lines included, each line ending in a newline. */
export function renderHostsBlock(entries: readonly HostsEntry[]): string {
  return [BEGIN_LINE, ...entries.map((e) => `${e.ip}\t${e.names.join(' ')}`), END_MARKER].map((l) => `${l}\n`).join('');
}

/**
 * The hosts file text with its block replaced by `block` (undefined: removed). Every other byte is
 * kept as it was, line endings included: the text should be read as latin1, which maps bytes to
 * characters one to one. The new block takes the place of the old one, or is appended. A begin
 * marker without an end marker (someone deleted it) is removed on its own: the lines after it may
 * be anybody's. Applying the same block twice changes nothing the second time.
 */
export function replaceHostsBlock(text: string, block: string | undefined): string {
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const out: string[] = [];
  let placed = block === undefined;
  for (let i = 0; i < lines.length; i++) {
    if (!bare(lines[i]!).startsWith(BEGIN_MARKER)) {
      out.push(lines[i]!);
      continue;
    }
    let end = i + 1;
    while (end < lines.length && bare(lines[end]!) !== END_MARKER && !bare(lines[end]!).startsWith(BEGIN_MARKER)) end++;
    if (end < lines.length && bare(lines[end]!) === END_MARKER) i = end;
    if (!placed) {
      out.push(block!);
      placed = true;
    }
  }
  if (!placed) {
    if (out.length > 0 && !out[out.length - 1]!.endsWith('\n')) out.push('\n');
    out.push(block!);
  }
  return out.join('');
}

function bare(line: string): string {
  return line.replace(/\r?\n$/, '').trimEnd();
}
