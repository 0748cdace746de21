import { InvalidObjectError } from '../errors.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import { endpointSliceFromObject, endpointSlicesFromEndpoints } from '../model/endpoint-slice-from-object.js';
import type { NodeSpec } from '../model/node.js';
import { nodeFromObject } from '../model/node-from-object.js';
import { isMapping } from '../model/object-fields.js';
import { serviceFromObject } from '../model/service-from-object.js';
import { shapeOf, unknownFields } from '../model/unknown-fields.js';
import type { ServiceSpec } from '../model/service.js';
import { notServedBecause, rawLabels } from './proxy-labels.js';
import { DEFAULT_MANIFEST_LIMITS, manifestNestingExceeded, manifestTextSizeExceeded } from './manifest-limits.js';
import type { ManifestLimits } from './manifest-limits.js';
import { isJsonManifest, objectsOfDocument, splitManifest } from './manifest-split.js';
import type { ManifestDocument, ManifestLocation } from './manifest-split.js';
import { eachPlainDocument } from './yaml-documents.js';

export { splitManifest } from './manifest-split.js';
export type { ManifestDocument, ManifestLocation } from './manifest-split.js';

/** What a manifest object means to the proxy. `object` is its identity, `Kind namespace/name`. */
export type ManifestEntry =
  | (ManifestLocation & UnknownFields & { readonly type: 'service'; readonly object: string; readonly service: ServiceSpec })
  /** An EndpointSlice (one slice) or a v1 Endpoints (one or more). */
  | (ManifestLocation & UnknownFields & { readonly type: 'slices'; readonly object: string; readonly slices: readonly EndpointSliceSpec[] })
  /** A v1 Node: this node's labels and state, when its name is this node's. */
  | (ManifestLocation & UnknownFields & { readonly type: 'node'; readonly object: string; readonly node: NodeSpec })
  /** A kind the proxy does not use, or (with `reason`) a Service, slice or Endpoints it does not serve. */
  | (ManifestLocation & { readonly type: 'ignored'; readonly object: string | undefined; readonly apiVersion: string; readonly kind: string; readonly reason?: string })
  /** `object` is undefined when the document is too broken to tell which object it is. `field` is '' for the whole document. */
  | (ManifestLocation & { readonly type: 'rejected'; readonly object: string | undefined; readonly field: string; readonly reason: string });

/** Fields of a used object that its kind does not have (`spec.ports[0].protocl`), for a warning; absent when there are none. */
export interface UnknownFields {
  readonly unknownFields?: readonly string[];
}

/** The identity of an object across files and edits: `Service default/web`. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind} ${namespace}/${name}`;
}

export interface ClassifyOptions {
  /** --service-proxy-name: as with the API, objects labelled for another proxy, or headless, are ignored (see proxy-labels.ts). */
  readonly serviceProxyName?: string;
}

/**
 * Reads every object in one file and converts the ones the proxy uses. A file over the size or
 * nesting limits (see manifest-limits.ts) is not parsed: it is one rejected entry, whose object
 * is unknown, so that the last good state of everything the file held is kept.
 */
export function parseManifest(text: string, fileName = '', limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS, options: ClassifyOptions = {}): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  forEachManifestEntry(text, fileName, limits, options, {
    add: (entry) => void entries.push(entry),
    restart: () => void (entries.length = 0),
  });
  return entries;
}

/** Where forEachManifestEntry puts a file's entries. */
export interface ManifestEntrySink {
  /** The next entry of the file. */
  add(entry: ManifestEntry): void;
  /** The entries added so far are void: the file is read again from its start, by the readers the plain one leaves it to. */
  restart(): void;
}

/**
 * The entries parseManifest gives, one at a time as each document is read: a document's objects
 * are converted before the next document is read, so that a caller that keeps only what it makes
 * of each entry lets the file's objects die young.
 */
export function forEachManifestEntry(text: string, fileName: string, limits: ManifestLimits, options: ClassifyOptions, sink: ManifestEntrySink): void {
  let exceeded = manifestTextSizeExceeded(text, limits);
  if (!exceeded && !isJsonManifest(fileName)) {
    const add = (doc: ManifestDocument): void => sink.add(classifyManifestObject(doc, options));
    // The plain reader counts the nesting as it reads: the scan is for what it leaves to the others.
    if (eachPlainDocument(text, limits.maxDepth, (value, document) => objectsOfDocument(document, value, add))) return;
    sink.restart();
  }
  exceeded ??= manifestNestingExceeded(text, limits.maxDepth);
  if (exceeded) {
    sink.add({ document: exceeded.document, type: 'rejected', object: undefined, field: '', reason: exceeded.reason });
    return;
  }
  for (const doc of splitManifest(text, fileName)) sink.add(classifyManifestObject(doc, options));
}

/**
 * `entry` at `where`: its document and, inside a List, its item. Written onto the new entry rather
 * than spread into it: `{ ...where, ... }` cost about 4 µs an object in V8 (Node 20), a fifth of
 * classifying the 20,000 objects of a start-up from 10,000 Services.
 */
function at<E extends object>(where: ManifestLocation, entry: E): ManifestLocation & E {
  const located = entry as E & { document: number; item?: number };
  located.document = where.document;
  if (where.item !== undefined) located.item = where.item;
  return located;
}

/** Converts one object by apiVersion and kind; other kinds are `ignored`, bad objects `rejected`. */
export function classifyManifestObject(doc: ManifestDocument, options: ClassifyOptions = {}): ManifestEntry {
  const where: ManifestLocation = doc.item === undefined ? { document: doc.document } : { document: doc.document, item: doc.item };
  if ('error' in doc) return at(where, { type: 'rejected', object: undefined, field: '', reason: doc.error });
  const obj = doc.object;
  const entry = classify(where, obj, options);
  if (entry.type !== 'service' && entry.type !== 'slices' && entry.type !== 'node') return entry;
  // Only manifests are checked: the API server already refuses fields its types do not have.
  const unknown = unknownFields(obj, shapeOf((obj as Record<string, unknown>)['apiVersion'], (obj as Record<string, unknown>)['kind'])!);
  return unknown.length === 0 ? entry : { ...entry, unknownFields: unknown };
}

function classify(where: ManifestLocation, obj: unknown, options: ClassifyOptions): ManifestEntry {
  if (!isMapping(obj)) return at(where, { type: 'rejected', object: undefined, field: '', reason: 'must be a mapping with apiVersion and kind' });
  const apiVersion = obj['apiVersion'];
  const kind = obj['kind'];
  const object = identityOf(obj);
  if (typeof apiVersion !== 'string' || apiVersion === '') return at(where, { type: 'rejected', object, field: 'apiVersion', reason: 'is required' });
  if (typeof kind !== 'string' || kind === '') return at(where, { type: 'rejected', object, field: 'kind', reason: 'is required' });
  if (kind.endsWith('List') && 'items' in obj && !Array.isArray(obj['items'])) return at(where, { type: 'rejected', object, field: 'items', reason: 'must be a list' });
  const served = apiVersion === 'v1' ? kind === 'Service' || kind === 'Endpoints' : apiVersion === 'discovery.k8s.io/v1' && kind === 'EndpointSlice';
  const notServed = served ? notServedBecause(rawLabels(obj), options.serviceProxyName) : undefined;
  if (notServed !== undefined) return at(where, { type: 'ignored', object, apiVersion, kind, reason: notServed });
  try {
    if (apiVersion === 'v1' && kind === 'Node') return at(where, { type: 'node', object: object!, node: nodeFromObject(obj) });
    if (apiVersion === 'v1' && kind === 'Service') return at(where, { type: 'service', object: object!, service: serviceFromObject(obj) });
    if (apiVersion === 'v1' && kind === 'Endpoints') return at(where, { type: 'slices', object: object!, slices: endpointSlicesFromEndpoints(obj) });
    if (apiVersion === 'discovery.k8s.io/v1' && kind === 'EndpointSlice') return at(where, { type: 'slices', object: object!, slices: [endpointSliceFromObject(obj)] });
  } catch (err) {
    if (err instanceof InvalidObjectError) return at(where, { type: 'rejected', object, field: err.field, reason: err.reason });
    // A validator bug must not take the proxy down with it: reject this object and go on.
    return at(where, { type: 'rejected', object, field: '', reason: `cannot be read: ${(err as Error).message}` });
  }
  return at(where, { type: 'ignored', object, apiVersion, kind });
}

/** `Kind namespace/name` when those can be read, even if the object is otherwise invalid. */
function identityOf(obj: Readonly<Record<string, unknown>>): string | undefined {
  const kind = obj['kind'];
  const meta = obj['metadata'];
  if (typeof kind !== 'string' || kind === '' || !isMapping(meta)) return undefined;
  const name = meta['name'];
  // Nodes are cluster-scoped: `Node node-a`.
  if (kind === 'Node') return typeof name === 'string' && name !== '' ? `Node ${name}` : undefined;
  const namespace = meta['namespace'] ?? 'default';
  if (typeof name !== 'string' || name === '' || typeof namespace !== 'string') return undefined;
  return objectKey(kind, namespace === '' ? 'default' : namespace, name);
}
