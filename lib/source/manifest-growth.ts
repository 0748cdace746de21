import { isDeepStrictEqual } from 'node:util';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { ServiceSpec } from '../model/service.js';

/**
 * Whether `after` only adds to `before`: every port of the Service is still there, unchanged,
 * and nothing else differs. Such a change takes nothing away from what is served, so a file
 * caught half-written cannot do harm by it (see ManifestSource).
 */
export function serviceGrows(before: ServiceSpec, after: ServiceSpec): boolean {
  return isDeepStrictEqual({ ...before, ports: undefined }, { ...after, ports: undefined }) && containsAll(after.ports, before.ports);
}

/**
 * Whether `after` only adds to `before`: every endpoint of the slice is still there, unchanged,
 * and nothing else differs but the trigger time (which moves with every change).
 */
export function sliceGrows(before: EndpointSliceSpec, after: EndpointSliceSpec): boolean {
  return (
    isDeepStrictEqual({ ...before, endpoints: undefined, triggerTimeMs: undefined }, { ...after, endpoints: undefined, triggerTimeMs: undefined }) && containsAll(after.endpoints, before.endpoints)
  );
}

/** Every element of `want` is in `have` (deeply equal). Appending keeps the order: that is checked first. */
function containsAll<T>(have: readonly T[], want: readonly T[]): boolean {
  if (want.length > have.length) return false;
  if (want.every((w, i) => isDeepStrictEqual(have[i], w))) return true;
  // Specs come from one parser, keys always in the same order: their JSON identifies them.
  const present = new Set(have.map((h) => JSON.stringify(h)));
  return want.every((w) => present.has(JSON.stringify(w)));
}
