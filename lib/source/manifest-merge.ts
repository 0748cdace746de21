import { logger } from '../log.js';
import { keyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import { keyOfService } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ManifestObject } from './manifest-file-cache.js';

const log = logger('manifests');

type FileObjects = ReadonlyMap<string, ManifestObject>;

/** One file whose objects changed: undefined before (a new file) or after (a removed one). */
export interface ManifestFileChange {
  readonly file: string;
  readonly before: FileObjects | undefined;
  readonly after: FileObjects | undefined;
}

/**
 * What all manifest files say together: the first file in path order wins an object that several
 * hold, which is warned about once per (object, losing file).
 *
 * A change to a few files is merged into what is there (O(objects of those files)) as long as no
 * object is held by two files and no two objects give the same EndpointSlice key; otherwise
 * everything is merged again from all files, as at start. One more Service with 10,000 in place
 * thus costs its own objects, where merging everything again cost about 25 ms of CPU.
 */
export class ManifestMerge {
  readonly #nodeName: string;
  services = new Map<ServiceKey, ServiceSpec>();
  slices = new Map<string, EndpointSliceSpec>();
  /** The Node manifest of this node's name, if any. */
  node: NodeSpec | undefined;
  /** object key → the file whose object is in force (the object itself is in that file's map). */
  #winners = new Map<string, string>();
  /** slice key → the object key it came from. */
  #sliceOwners = new Map<string, string>();
  /** `objectKey\nlosing file` of every cross-file duplicate now; an incremental merge needs none. */
  #conflicts = new Set<string>();
  /** Two objects gave the same slice key at the last all(): incremental merges are off until the next. */
  #collided = false;

  constructor(nodeName: string) {
    this.#nodeName = nodeName;
  }

  /** Merges every file, given in path order. */
  all(files: Iterable<[string, FileObjects]>): void {
    const previousConflicts = this.#conflicts;
    this.#conflicts = new Set();
    this.#winners = new Map();
    this.services = new Map();
    this.slices = new Map();
    this.#sliceOwners = new Map();
    this.#collided = false;
    this.node = undefined;
    // The first file in path order that holds an object wins it: it is added when first met.
    for (const [file, objects] of files) {
      for (const [key, obj] of objects) {
        const winner = this.#winners.get(key);
        if (winner === undefined) {
          this.#winners.set(key, file);
          this.#add(key, obj);
          continue;
        }
        const conflict = `${key}\n${file}`;
        if (!previousConflicts.has(conflict)) log.warn('duplicate manifest object', { object: key, file, kept: winner });
        this.#conflicts.add(conflict);
      }
    }
  }

  /**
   * Merges the changes of a few files into what is there; false, changing nothing, when that
   * cannot be done (an object in two files, or two objects giving one slice key): all() then.
   */
  update(changes: readonly ManifestFileChange[]): boolean {
    if (!this.#canUpdate(changes)) return false;
    for (const { before, after } of changes) {
      for (const [key, obj] of before ?? []) {
        if (after?.get(key) === obj) continue;
        this.#remove(key, obj);
        this.#winners.delete(key);
      }
    }
    for (const { file, before, after } of changes) {
      for (const [key, obj] of after ?? []) {
        if (before?.get(key) === obj) continue;
        this.#add(key, obj);
        this.#winners.set(key, file);
      }
    }
    return true;
  }

  #canUpdate(changes: readonly ManifestFileChange[]): boolean {
    if (this.#conflicts.size > 0 || this.#collided) return false;
    const removed = new Set<string>();
    for (const { before, after } of changes) for (const [key, obj] of before ?? []) if (after?.get(key) !== obj) removed.add(key);
    const added = new Set<string>();
    const addedSlices = new Set<string>();
    for (const { before, after } of changes) {
      for (const [key, obj] of after ?? []) {
        if (before?.get(key) === obj) continue;
        if (added.has(key) || (this.#winners.has(key) && !removed.has(key))) return false;
        added.add(key);
        if (obj.type !== 'slices') continue;
        for (const slice of obj.slices) {
          const sliceKey = keyOfSlice(slice);
          const owner = this.#sliceOwners.get(sliceKey);
          if (addedSlices.has(sliceKey) || (owner !== undefined && !removed.has(owner))) return false;
          addedSlices.add(sliceKey);
        }
      }
    }
    return true;
  }

  /** Adds what one object gives; a slice key another object gave is taken over (and remembered). */
  #add(key: string, obj: ManifestObject): void {
    if (obj.type === 'service') {
      this.services.set(keyOfService(obj.service), obj.service);
    } else if (obj.type === 'slices') {
      for (const slice of obj.slices) {
        const sliceKey = keyOfSlice(slice);
        const owner = this.#sliceOwners.get(sliceKey);
        // As merging all files always did, the later object's slice wins such a collision.
        if (owner !== undefined && owner !== key) this.#collided = true;
        this.#sliceOwners.set(sliceKey, key);
        this.slices.set(sliceKey, slice);
      }
    } else if (obj.node.name === this.#nodeName) {
      this.node = obj.node;
    }
  }

  #remove(key: string, obj: ManifestObject): void {
    if (obj.type === 'service') {
      this.services.delete(keyOfService(obj.service));
    } else if (obj.type === 'slices') {
      for (const slice of obj.slices) {
        const sliceKey = keyOfSlice(slice);
        if (this.#sliceOwners.get(sliceKey) !== key) continue;
        this.#sliceOwners.delete(sliceKey);
        this.slices.delete(sliceKey);
      }
    } else if (obj.node.name === this.#nodeName && this.node === obj.node) {
      this.node = undefined;
    }
  }
}
