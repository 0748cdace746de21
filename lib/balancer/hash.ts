/**
 * A 32-bit hash of a string: FNV-1a over its UTF-16 code units, started from a seed, then
 * MurmurHash3's finalizer, because FNV alone leaves addresses that differ in their last digit too
 * close together for `mod M` tables. Not cryptographic: clients could aim at one endpoint, as they
 * can with IPVS's sh and mh.
 */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
