import { makeEndpoint } from './endpoint.js';
import type { Endpoint, PodRef } from './endpoint.js';
import { serviceKeyOfSlice } from './endpoint-slice.js';
import type { EndpointSliceSpec, EndpointSpec } from './endpoint-slice.js';
import { keyOfService } from './service.js';
import type { ServicePortSpec, ServiceSpec } from './service.js';
import type { ServiceKey } from './service-port-name.js';
import { chooseEndpoints } from './endpoint-choice.js';
import type { EndpointFilter, MergedEndpoint } from './endpoint-choice.js';

export type { EndpointFilter } from './endpoint-choice.js';

/**
 * Every known EndpointSlice, grouped by the Service it belongs to, and the merge of a service's
 * slices into the endpoint list of one of its ports.
 */
export class EndpointsCache {
  readonly #slices = new Map<string, EndpointSliceSpec>();
  /**
   * A service's slice keys: the key itself while it has one slice (most have), a Set from the
   * second. A Set of one entry is about 150 bytes of heap: 1.5 MB with 10,000 Services.
   */
  readonly #byService = new Map<ServiceKey, string | Set<string>>();

  /**
   * Stores (or, with undefined, forgets) the slice under `sliceKey` (`namespace/sliceName`).
   * Returns the services whose endpoints may have changed: none, one, or two when the slice moved
   * from one service to another (both must be recomputed).
   */
  update(sliceKey: string, slice: EndpointSliceSpec | undefined): ServiceKey[] {
    const affected: ServiceKey[] = [];
    const old = this.#slices.get(sliceKey);
    if (old) {
      const svc = serviceKeyOfSlice(old);
      affected.push(svc);
      const keys = this.#byService.get(svc);
      if (keys === sliceKey) this.#byService.delete(svc);
      else if (typeof keys === 'object') {
        keys.delete(sliceKey);
        if (keys.size === 0) this.#byService.delete(svc);
      }
      this.#slices.delete(sliceKey);
    }
    if (slice) {
      const svc = serviceKeyOfSlice(slice);
      if (!affected.includes(svc)) affected.push(svc);
      this.#slices.set(sliceKey, slice);
      const keys = this.#byService.get(svc);
      if (keys === undefined) this.#byService.set(svc, sliceKey);
      else if (typeof keys === 'object') keys.add(sliceKey);
      else if (keys !== sliceKey) this.#byService.set(svc, new Set([keys, sliceKey]));
    }
    return affected;
  }

  /** The slices of one service, for inspection. */
  slicesOf(key: ServiceKey): EndpointSliceSpec[] {
    return this.#sliceKeysOf(key).map((k) => this.#slices.get(k)!);
  }

  get size(): number {
    return this.#slices.size;
  }

  #sliceKeysOf(key: ServiceKey): string[] {
    const keys = this.#byService.get(key);
    return keys === undefined ? [] : typeof keys === 'string' ? [keys] : [...keys];
  }

  /**
   * The endpoints of one service port, merged over all of the service's slices and sorted by key.
   * The ready endpoints; if none is ready, the ones that are serving and terminating, so a
   * service being rolled keeps answering (kube-proxy's terminating-endpoints fallback).
   * An address that several slices list counts as ready when any of them says it is ready.
   * `filter.accept(nodeName)` and `filter.family` filter endpoints first (Local traffic policies;
   * one family of a dual-stack service); the fallback applies to what they let through.
   * `filter.topology` narrows the ready endpoints by their hints (see topologyMode), except with
   * `accept`: as in kube-proxy, a Local policy wins over topology. `serviceKey` is the Service's
   * key, when the caller has it already.
   */
  endpointsFor(svc: ServiceSpec, port: ServicePortSpec, filter: EndpointFilter = {}, serviceKey: ServiceKey = keyOfService(svc)): Endpoint[] {
    const { accept, family } = filter;
    const keys = this.#byService.get(serviceKey);
    if (typeof keys === 'string') {
      const one = this.#onlyEndpoint(keys, port, filter);
      if (one !== undefined) return chooseEndpoints(one, filter);
    }
    const merged = new Map<string, MergedEndpoint>();
    // The keys walked in place: copying them into an array cost a tenth of a first sync's endpoint work.
    for (const sliceKey of keys === undefined ? NO_SLICES : typeof keys === 'string' ? [keys] : keys) {
      const slice = this.#slices.get(sliceKey)!;
      if (slice.addressType === 'FQDN') continue;
      // A slice holds addresses of its addressType only (the API server validates it).
      if (family !== undefined && slice.addressType !== family) continue;
      const portNumber = targetPortIn(slice, port);
      if (portNumber === undefined) continue;
      for (const e of slice.endpoints) {
        if (accept && !accept(e.nodeName)) continue;
        for (const ip of e.addresses) {
          const endpoint = makeEndpoint(ip, portNumber, e.nodeName, podOf(e));
          const seen = merged.get(endpoint.key);
          const fallback = e.serving && e.terminating;
          if (!seen) merged.set(endpoint.key, { endpoint, ready: e.ready, fallback, hints: e.hints });
          else {
            seen.ready ||= e.ready;
            seen.fallback ||= fallback;
            seen.hints ??= e.hints;
            if ((seen.endpoint.nodeName === '' && e.nodeName !== '') || (seen.endpoint.pod === undefined && endpoint.pod !== undefined)) {
              seen.endpoint = makeEndpoint(ip, portNumber, seen.endpoint.nodeName || e.nodeName, seen.endpoint.pod ?? endpoint.pod);
            }
          }
        }
      }
    }
    return chooseEndpoints(
      [...merged.values()].sort((a, b) => (a.endpoint.key < b.endpoint.key ? -1 : a.endpoint.key > b.endpoint.key ? 1 : 0)),
      filter,
    );
  }

  /**
   * The endpoints of a service whose one slice has one endpoint of one address (most services):
   * nothing to merge or sort. A first sync of 10,000 such services ran the merge with V8's code
   * still cold, about 12 µs a port. undefined when the slice has more, or another shape.
   */
  #onlyEndpoint(sliceKey: string, port: ServicePortSpec, filter: EndpointFilter): MergedEndpoint[] | undefined {
    const slice = this.#slices.get(sliceKey)!;
    if (slice.endpoints.length !== 1 || slice.endpoints[0]!.addresses.length !== 1) return undefined;
    if (slice.addressType === 'FQDN' || (filter.family !== undefined && slice.addressType !== filter.family)) return [];
    const portNumber = targetPortIn(slice, port);
    const e = slice.endpoints[0]!;
    if (portNumber === undefined || (filter.accept && !filter.accept(e.nodeName))) return [];
    return [{ endpoint: makeEndpoint(e.addresses[0]!, portNumber, e.nodeName, podOf(e)), ready: e.ready, fallback: e.serving && e.terminating, hints: e.hints }];
  }
}

const NO_SLICES: ReadonlySet<string> = new Set();

/** The Pod an endpoint's targetRef names, if it names one. */
function podOf(e: EndpointSpec): PodRef | undefined {
  const ref = e.targetRef;
  return ref !== undefined && ref.kind === 'Pod' ? { namespace: ref.namespace, name: ref.name } : undefined;
}

/**
 * The endpoint port a service port reaches in one slice: the slice port with the same name and
 * protocol (the endpoint controllers name slice ports after service ports and resolve named
 * targetPorts into them), or the numeric targetPort when the slice declares no ports at all.
 */
function targetPortIn(slice: EndpointSliceSpec, port: ServicePortSpec): number | undefined {
  if (slice.ports === undefined) return typeof port.targetPort === 'number' ? port.targetPort : undefined;
  return slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol)?.port;
}
