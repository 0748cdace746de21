import type { Endpoint } from '../model/endpoint.js';

/** The endpoints' keys joined, as ProxiedPort.endpointsKey; without an array for the one endpoint most ports have. */
export function endpointsKeyOf(eps: readonly Endpoint[]): string {
  if (eps.length === 1) return eps[0]!.key;
  let out = '';
  for (let i = 0; i < eps.length; i++) out += i === 0 ? eps[i]!.key : `,${eps[i]!.key}`;
  return out;
}
