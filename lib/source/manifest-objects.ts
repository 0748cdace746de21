import { logger } from '../log.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import type { ServiceSpec } from '../model/service.js';
import type { ManifestEntry } from './manifest-parser.js';

const log = logger('manifests');

/** A manifest object (or a whole file) that was not applied; its last good state stays in force. */
export interface ManifestRejection {
  readonly file: string;
  /** 1-based document in the file; 0 when the file itself could not be read. */
  readonly document: number;
  /** 0-based index in the `items` of a List document. */
  readonly item?: number;
  /** `Service default/web`, or `unknown` when the document is too broken to tell. */
  readonly object: string;
  /** The field at fault, as `spec.ports[1].targetPort`; '' for the whole document or file. */
  readonly field: string;
  readonly reason: string;
}

/** One object of a manifest file. */
export type ManifestObject =
  { readonly type: 'service'; readonly service: ServiceSpec } | { readonly type: 'slices'; readonly slices: readonly EndpointSliceSpec[] } | { readonly type: 'node'; readonly node: NodeSpec };

/**
 * The objects of one file's new entries, with the last good state of each rejected object kept
 * (`previous`: the file's objects before). Warnings and ignored objects are logged here;
 * rejections go to `reject`, in document order.
 */
export function objectsOfEntries(
  file: string,
  entries: readonly ManifestEntry[],
  previous: ReadonlyMap<string, ManifestObject> | undefined,
  reject: (rejection: ManifestRejection) => void,
): Map<string, ManifestObject> {
  const objects = new Map<string, ManifestObject>();
  const add = (key: string, obj: ManifestObject, document: number): void => {
    if (objects.has(key)) log.warn('duplicate manifest object', { file, document, object: key, kept: 'first' });
    else objects.set(key, obj);
  };
  const keep = new Set<string>();
  let keepAll = false;
  for (const entry of entries) {
    if ('unknownFields' in entry && entry.unknownFields)
      log.warn('unknown fields in manifest object', {
        file,
        document: entry.document,
        ...(entry.item === undefined ? {} : { item: entry.item }),
        object: entry.object,
        fields: entry.unknownFields.join(','),
      });
    switch (entry.type) {
      case 'service':
        add(entry.object, { type: 'service', service: entry.service }, entry.document);
        break;
      case 'slices':
        add(entry.object, { type: 'slices', slices: entry.slices }, entry.document);
        break;
      case 'node':
        add(entry.object, { type: 'node', node: entry.node }, entry.document);
        break;
      case 'ignored': {
        const fields = { file, document: entry.document, item: entry.item, object: entry.object ?? 'unknown', apiVersion: entry.apiVersion, kind: entry.kind };
        // A Service skipped for its labels is news to whoever wrote it; an unrelated kind is not.
        if (entry.reason !== undefined) log.info('ignored manifest object', { ...fields, reason: entry.reason });
        else log.debug('ignored manifest object', fields);
        break;
      }
      case 'rejected': {
        const rejection: ManifestRejection = {
          file,
          document: entry.document,
          ...(entry.item === undefined ? {} : { item: entry.item }),
          object: entry.object ?? 'unknown',
          field: entry.field,
          reason: entry.reason,
        };
        reject(rejection);
        // Without an identity, any object of the old text may be the one that broke.
        if (entry.object === undefined) keepAll = true;
        else keep.add(entry.object);
        break;
      }
    }
  }
  for (const [key, obj] of previous ?? []) {
    if (!objects.has(key) && (keepAll || keep.has(key))) objects.set(key, obj);
  }
  return objects;
}
