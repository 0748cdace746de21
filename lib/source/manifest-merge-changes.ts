import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import { keyOfSlice } from '../model/endpoint-slice.js';
import type { ServiceSpec } from '../model/service.js';
import { keyOfService } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ManifestObject } from './manifest-objects.js';
import type { ManifestFileChange, ManifestMerge } from './manifest-merge.js';

/** One kind's merged objects, before and after a merge: only the keys that may differ, or all of them. */
export type BeforeAfter<K, V> = [ReadonlyMap<K, V>, ReadonlyMap<K, V>];

/**
 * Merges the changed files into `merge` (only those when given and possible, else every file
 * from `allFiles`) and returns what to compare for delivery: the touched keys before and after,
 * or the whole merged state before and after.
 */
export function mergeChanges(
  merge: ManifestMerge,
  changes: readonly ManifestFileChange[] | undefined,
  allFiles: () => Iterable<[string, ReadonlyMap<string, ManifestObject>]>,
): { services: BeforeAfter<ServiceKey, ServiceSpec>; slices: BeforeAfter<string, EndpointSliceSpec> } {
  if (changes !== undefined) {
    const touched = touchedKeys(changes);
    const services = pick(merge.services, touched.services);
    const slices = pick(merge.slices, touched.slices);
    if (merge.update(changes)) return { services: [services, pick(merge.services, touched.services)], slices: [slices, pick(merge.slices, touched.slices)] };
  }
  const servicesBefore = merge.services;
  const slicesBefore = merge.slices;
  merge.all(allFiles());
  return { services: [servicesBefore, merge.services], slices: [slicesBefore, merge.slices] };
}

/** The Service and EndpointSlice keys that objects changed in these files give, before or after. */
function touchedKeys(changes: readonly ManifestFileChange[]): { services: Set<ServiceKey>; slices: Set<string> } {
  const services = new Set<ServiceKey>();
  const slices = new Set<string>();
  const add = (obj: ManifestObject | undefined): void => {
    if (obj?.type === 'service') services.add(keyOfService(obj.service));
    else if (obj?.type === 'slices') for (const slice of obj.slices) slices.add(keyOfSlice(slice));
  };
  for (const { before, after } of changes) {
    for (const [key, obj] of before ?? []) if (after?.get(key) !== obj) add(obj);
    for (const [key, obj] of after ?? []) if (before?.get(key) !== obj) add(obj);
  }
  return { services, slices };
}

function pick<K, V>(map: ReadonlyMap<K, V>, keys: ReadonlySet<K>): Map<K, V> {
  const out = new Map<K, V>();
  for (const key of keys) {
    const value = map.get(key);
    if (value !== undefined) out.set(key, value);
  }
  return out;
}
