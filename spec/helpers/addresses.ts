/**
 * Loopback addresses unique to one spec file, so parallel ava workers never collide on a
 * service port: every 127.x.y.z is local on Linux. Each spec file passes its own block number.
 */
export function loopbackBlock(block: number): (host: number) => string {
  if (!Number.isInteger(block) || block < 1 || block > 250) throw new Error(`bad loopback block ${block}`);
  return (host: number) => `127.77.${block}.${host}`;
}
