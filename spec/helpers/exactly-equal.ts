/**
 * Equal values with keys in the same order, undefined-valued keys included; -0 is not 0, NaN is
 * NaN. Stricter than isDeepStrictEqual, which ignores key order: what the differential specs need.
 */
export function exactlyEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => exactlyEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
