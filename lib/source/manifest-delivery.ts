import { isDeepStrictEqual } from 'node:util';
import { logger } from '../log.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import { diffKeyedMaps } from './keyed-map-diff.js';
import type { BeforeAfter } from './manifest-merge-changes.js';
import { serviceGrows, sliceGrows } from './manifest-growth.js';
import type { ServiceSourceHandler } from './service-source.js';

const log = logger('manifests');

/** What a merge of the files says, for delivery: the keys that may differ before and after, and the whole merged state now. */
export interface MergedState {
  readonly services: BeforeAfter<ServiceKey, ServiceSpec>;
  readonly slices: BeforeAfter<string, EndpointSliceSpec>;
  readonly allServices: ReadonlyMap<ServiceKey, ServiceSpec>;
  readonly allSlices: ReadonlyMap<string, EndpointSliceSpec>;
  /** This node from its manifest and --node-labels. */
  readonly node: NodeSpec | undefined;
}

/** One key whose state in the files differs from what the handler has. */
interface Difference<K, V> {
  readonly key: K;
  readonly previous: V | undefined;
  readonly current: V | undefined;
}

/**
 * Hands the differences of the merged manifests to the handler: all of them, or (while files
 * may still be half-written) only a change that does nothing but add. A held difference is one
 * the handler has not been given: it keeps the state it was last given for that key, and gets the
 * rest when the files have been quiet (deliverAll).
 */
export class ManifestDelivery {
  readonly #handler: ServiceSourceHandler;
  /** Key → what the handler was last given for it (undefined: nothing), for keys whose news is held. */
  readonly #heldServices = new Map<ServiceKey, ServiceSpec | undefined>();
  readonly #heldSlices = new Map<string, EndpointSliceSpec | undefined>();
  #node: NodeSpec | undefined;
  /** This node changed in the files and the handler has not been told. */
  #nodeHeld = false;
  /** onSynced has been called: a handler failure is logged from then on, not thrown. */
  #synced = false;

  constructor(handler: ServiceSourceHandler) {
    this.#handler = handler;
  }

  /** Some difference is held back until deliverAll(). */
  get holding(): boolean {
    return this.#nodeHeld || this.#heldServices.size + this.#heldSlices.size > 0;
  }

  synced(): void {
    this.#synced = true;
    this.#handler.onSynced();
  }

  /** Delivers every difference, held ones included, and this node. */
  deliverAll(state: MergedState): void {
    const services = differences(state.services, state.allServices, this.#heldServices);
    const slices = differences(state.slices, state.allSlices, this.#heldSlices);
    this.#heldServices.clear();
    this.#heldSlices.clear();
    this.#nodeHeld = false;
    let changed = this.#send(services, slices);
    if (!isDeepStrictEqual(state.node, this.#node)) {
      this.#node = state.node;
      changed++;
      this.#call(() => this.#handler.onNodeChange?.(state.node));
    }
    if (changed > 0 && this.#synced) log.debug('delivered manifest changes', { changes: changed });
  }

  /**
   * Delivers the differences if all of them add: new Services and EndpointSlices, or ones that
   * only grew (see manifest-growth), and nothing already held. Otherwise every one of them is held
   * for deliverAll(), so that one save still takes effect as a whole.
   */
  deliverAdditions(state: MergedState): void {
    const services = differences(state.services, state.allServices, this.#heldServices);
    const slices = differences(state.slices, state.allSlices, this.#heldSlices);
    // A held key whose files came back to what the handler has holds nothing any more.
    for (const [key, value] of this.#heldServices) if (isDeepStrictEqual(value, state.allServices.get(key))) this.#heldServices.delete(key);
    for (const [key, value] of this.#heldSlices) if (isDeepStrictEqual(value, state.allSlices.get(key))) this.#heldSlices.delete(key);
    this.#nodeHeld ||= !isDeepStrictEqual(state.node, this.#node);
    if (!this.holding && services.every((d) => adds(d, serviceGrows)) && slices.every((d) => adds(d, sliceGrows))) {
      const changed = this.#send(services, slices);
      if (changed > 0) log.debug('delivered manifest additions', { changes: changed });
      return;
    }
    for (const d of services) if (!this.#heldServices.has(d.key)) this.#heldServices.set(d.key, d.previous);
    for (const d of slices) if (!this.#heldSlices.has(d.key)) this.#heldSlices.set(d.key, d.previous);
    log.debug('held manifest changes until the files are quiet', { services: this.#heldServices.size, endpointSlices: this.#heldSlices.size, node: this.#nodeHeld });
  }

  #send(services: ReadonlyArray<Difference<ServiceKey, ServiceSpec>>, slices: ReadonlyArray<Difference<string, EndpointSliceSpec>>): number {
    // No closure for each difference: a first sync has 20,000 of them.
    const h = this.#handler;
    for (const d of services) this.#change(h, h.onServiceChange, d);
    for (const d of slices) this.#change(h, h.onEndpointSliceChange, d);
    return services.length + slices.length;
  }

  /** One difference to the handler, as #call. */
  #change<V>(h: ServiceSourceHandler, change: (key: string, previous: V | undefined, current: V | undefined) => void, d: Difference<string, V>): void {
    if (!this.#synced) return change.call(h, d.key, d.previous, d.current);
    try {
      change.call(h, d.key, d.previous, d.current);
    } catch (err) {
      log.error('manifest change handler failed', { error: (err as Error).message });
    }
  }

  /** Before onSynced a handler failure fails start(); afterwards it is logged and the next change still goes out. */
  #call(call: () => void): void {
    if (!this.#synced) return call();
    try {
      call();
    } catch (err) {
      log.error('manifest change handler failed', { error: (err as Error).message });
    }
  }
}

/** A new object, or one that only grew. */
function adds<V>(d: Difference<string, V>, grows: (before: V, after: V) => boolean): boolean {
  return d.current !== undefined && (d.previous === undefined || grows(d.previous, d.current));
}

/**
 * What differs, in key order, between what the handler has and what the files say, for the keys
 * that may differ and the held ones (for which the handler has their held state).
 */
function differences<K extends string, V>([before, after]: BeforeAfter<K, V>, all: ReadonlyMap<K, V>, held: ReadonlyMap<K, V | undefined>): Array<Difference<K, V>> {
  let previous = before;
  let current = after;
  if (held.size > 0) {
    const p = new Map(before);
    const c = new Map(after);
    for (const [key, value] of held) {
      if (value === undefined) p.delete(key);
      else p.set(key, value);
      const now = all.get(key);
      if (now === undefined) c.delete(key);
      else c.set(key, now);
    }
    previous = p;
    current = c;
  }
  const out: Array<Difference<K, V>> = [];
  diffKeyedMaps(previous, current, (key, p, c) => out.push({ key, previous: p, current: c }), { sorted: true });
  return out;
}
