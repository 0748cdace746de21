import type { KubernetesObject } from '@kubernetes/client-node';
import { InvalidObjectError } from '../errors.js';
import { logger } from '../log.js';
import type { InformerSink } from './informer-supervisor.js';
import { diffKeyedMaps } from './keyed-map-diff.js';

const log = logger('kubernetes');

/** How one kind of API object becomes what the proxy uses. */
export interface ObjectConversion<S> {
  /** For warnings: `Service`, `EndpointSlice`, `Endpoints`. */
  readonly kind: string;
  /**
   * The specs an object stands for, by delivery key (a v1 Endpoints gives several slices); empty
   * when the object is to be ignored. Throws InvalidObjectError.
   */
  convert(obj: KubernetesObject): ReadonlyMap<string, S>;
  /** Called only for real differences. Must not throw. */
  deliver(key: string, previous: S | undefined, current: S | undefined): void;
}

const NOTHING: ReadonlyMap<string, never> = new Map<string, never>();

/**
 * Turns informer events and lists into changes of converted specs, delivering only what really
 * differs (deep equality on the specs), so that relists, resumed watches and metadata-only
 * updates never re-deliver an unchanged object and never delete one that is still there.
 *
 * An object that fails conversion keeps its last good state, and is warned about once per
 * resourceVersion (a relist shows the same bad object again; that is not news).
 */
export class ObjectTracker<S> implements InformerSink {
  readonly #conversion: ObjectConversion<S>;
  /** `namespace/name` of the API object → what it was last converted to. */
  readonly #objects = new Map<string, ReadonlyMap<string, S>>();
  /** `namespace/name` → the version that was last rejected. */
  readonly #rejected = new Map<string, string>();
  /** `namespace/name` → the resourceVersion last converted, to skip converting the same version again. */
  readonly #versions = new Map<string, string>();
  #specs = 0;

  constructor(conversion: ObjectConversion<S>) {
    this.#conversion = conversion;
  }

  /** Specs delivered and in force now. */
  get size(): number {
    return this.#specs;
  }

  /** Objects whose latest version was rejected. */
  get rejected(): number {
    return this.#rejected.size;
  }

  onList(items: readonly KubernetesObject[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      seen.add(objectId(obj));
      this.#apply(obj);
    }
    for (const id of [...this.#objects.keys()]) if (!seen.has(id)) this.#remove(id);
    for (const id of [...this.#rejected.keys()]) if (!seen.has(id)) this.#rejected.delete(id);
    for (const id of [...this.#versions.keys()]) if (!seen.has(id)) this.#versions.delete(id);
  }

  onUpsert(obj: KubernetesObject): void {
    this.#apply(obj);
  }

  onDelete(obj: KubernetesObject): void {
    const id = objectId(obj);
    this.#rejected.delete(id);
    this.#versions.delete(id);
    this.#remove(id);
  }

  #apply(obj: KubernetesObject): void {
    const id = objectId(obj);
    // A list is followed by the informer's own add/update events for the same versions, and a
    // relist repeats every unchanged one: a version already converted converts to the same specs.
    const version = obj.metadata?.resourceVersion;
    if (version && this.#versions.get(id) === version) return;
    let next: ReadonlyMap<string, S>;
    try {
      next = this.#conversion.convert(obj);
    } catch (err) {
      this.#reject(id, obj, err);
      return;
    }
    this.#rejected.delete(id);
    if (version) this.#versions.set(id, version);
    else this.#versions.delete(id);
    const prev = this.#objects.get(id) ?? NOTHING;
    if (next.size === 0) this.#objects.delete(id);
    else this.#objects.set(id, next);
    this.#diff(prev, next);
  }

  #remove(id: string): void {
    const prev = this.#objects.get(id);
    if (!prev) return;
    this.#objects.delete(id);
    this.#diff(prev, NOTHING);
  }

  #diff(prev: ReadonlyMap<string, S>, next: ReadonlyMap<string, S>): void {
    const { added, removed } = diffKeyedMaps(prev, next, (key, before, after) => this.#conversion.deliver(key, before, after));
    this.#specs += added - removed;
  }

  #reject(id: string, obj: KubernetesObject, err: unknown): void {
    const version = obj.metadata?.resourceVersion || JSON.stringify(obj);
    if (this.#rejected.get(id) === version) return;
    this.#rejected.set(id, version);
    const field = err instanceof InvalidObjectError ? err.field : '';
    const reason = err instanceof InvalidObjectError ? err.reason : (err as Error).message;
    log.warn('rejected kubernetes object', {
      kind: this.#conversion.kind,
      namespace: obj.metadata?.namespace ?? '',
      name: obj.metadata?.name ?? '',
      field,
      reason,
      kept: this.#objects.has(id) ? 'last good state' : 'nothing',
    });
  }
}

function objectId(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
