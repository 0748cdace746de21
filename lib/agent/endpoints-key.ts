import type { Endpoint } from '../model/endpoint.js';

/**
 * The endpoints' keys joined, as ProxiedPort.endpointsKey; without an array for the one endpoint
 * most ports have. With join(), not +: the port keeps the key, and one flat string is smaller than
 * the cons strings + leaves.
 */
export function endpointsKeyOf(eps: readonly Endpoint[]): string {
  if (eps.length === 1) return eps[0]!.key;
  const keys: string[] = [];
  for (const e of eps) keys.push(e.key);
  return keys.join(',');
}
