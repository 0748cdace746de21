import { logger } from '../log.js';
import { keyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import { keyOfService } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ManifestObject } from './manifest-file-cache.js';

const log = logger('manifests');

/** What all manifest files say together. */
export interface MergedManifests {
  readonly services: Map<ServiceKey, ServiceSpec>;
  readonly slices: Map<string, EndpointSliceSpec>;
  /** The Node manifest of this node's name, if any. */
  readonly node: NodeSpec | undefined;
  /** `objectKey\nlosing file` of every cross-file duplicate now: pass it to the next merge. */
  readonly conflicts: Set<string>;
}

/**
 * Merges the objects of every file, given in path order: the first file wins a duplicate, which
 * is warned about once (`warned` holds the duplicates of the previous merge).
 */
export function mergeManifests(files: Iterable<[string, ReadonlyMap<string, ManifestObject>]>, nodeName: string, warned: ReadonlySet<string>): MergedManifests {
  const winners = new Map<string, { file: string; obj: ManifestObject }>();
  const conflicts = new Set<string>();
  for (const [file, objects] of files) {
    for (const [key, obj] of objects) {
      const winner = winners.get(key);
      if (!winner) {
        winners.set(key, { file, obj });
        continue;
      }
      const conflict = `${key}\n${file}`;
      if (!warned.has(conflict)) log.warn('duplicate manifest object', { object: key, file, kept: winner.file });
      conflicts.add(conflict);
    }
  }
  const services = new Map<ServiceKey, ServiceSpec>();
  const slices = new Map<string, EndpointSliceSpec>();
  let node: NodeSpec | undefined;
  for (const { obj } of winners.values()) {
    if (obj.type === 'service') services.set(keyOfService(obj.service), obj.service);
    else if (obj.type === 'slices') for (const slice of obj.slices) slices.set(keyOfSlice(slice), slice);
    else if (obj.node.name === nodeName) node = obj.node;
  }
  return { services, slices, node, conflicts };
}
