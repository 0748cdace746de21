/** Where descriptions start in --help: past the usual flag and its value name. */
const DESCRIPTION_COLUMN = 32;
/** Descriptions wrap here, so --help reads on a terminal without a horizontal scroll. */
const LINE_WIDTH = 100;

/**
 * Two-column help rows: `[flag, description]` → lines. A flag too long for its column puts its
 * description on the next line, so the two never run together; descriptions wrap at word
 * boundaries, continued in the description column. A `\u00a0` in a description never breaks.
 */
export function helpColumns(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const indent = ' '.repeat(DESCRIPTION_COLUMN);
  const lines: string[] = [];
  for (const [left, text] of rows) {
    const wrapped = wrap(text, LINE_WIDTH - DESCRIPTION_COLUMN).map((l) => l.replaceAll('\u00a0', ' '));
    if (left.length + 2 <= DESCRIPTION_COLUMN) lines.push(left.padEnd(DESCRIPTION_COLUMN) + wrapped.shift());
    else lines.push(left);
    for (const l of wrapped) lines.push(indent + l);
  }
  return lines;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}
