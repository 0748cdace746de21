/**
 * A uniformly shuffled copy of items (Fisher–Yates). The input is left untouched, because callers
 * pass endpoint lists they do not own.
 *
 * `random` follows Math.random's contract (a number in [0, 1)); tests inject a seeded one so that
 * the order is reproducible.
 */
export function shuffle<T>(items: readonly T[], random: () => number = Math.random): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
