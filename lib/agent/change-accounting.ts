import diagnosticsChannel from 'node:diagnostics_channel';
import { isDeepStrictEqual } from 'node:util';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { IPFamily } from '../model/ip-address.js';

/**
 * Published when an endpoint change whose slice carries a last-change-trigger-time is in force:
 * `{ agent, family, seconds }`, seconds from the trigger time to now.
 */
export const PROGRAMMED_CHANNEL = diagnosticsChannel.channel('kube-userspace-proxy:network-programmed');

/** The change counts behind kube-proxy's `sync_proxy_rules_*_changes_*` metrics. */
export interface ChangeCounts {
  /** Every Service add, update and delete seen. */
  readonly serviceChangesTotal: number;
  /** Services whose change waits for the next sync (coalesced: one per Service). */
  readonly serviceChangesPending: number;
  /** Every IPv4 or IPv6 EndpointSlice add, update and delete seen. */
  readonly endpointChangesTotal: number;
  /** Always 0: endpoint changes reach the balancer as they arrive, with no sync to wait for. */
  readonly endpointChangesPending: number;
}

interface HeldTrigger {
  readonly family: IPFamily;
  readonly triggerTimeMs: number;
}

/**
 * Counts Service and EndpointSlice changes as kube-proxy's change trackers do, and times network
 * programming from the slices' last-change-trigger-time annotation.
 *
 * kube-proxy observes the latency at the sync that writes an endpoint change into the rules. Here
 * endpoint changes reach the balancer when they arrive, so the latency is observed then; only a
 * change that cannot be in force yet (before the first sync, or while its Service's own change
 * waits for a sync) is held and observed at the end of the sync that applies it. As in kube-proxy,
 * trigger times from before this agent started are ignored (they date the objects of the initial
 * list, not a change this agent programmed), deletions are not timed (their annotation dates the
 * previous update), and a slice update that changes nothing the proxy uses is not timed.
 */
export class ChangeAccounting {
  readonly #owner: unknown;
  readonly #now: () => number;
  readonly #startedMs: number;
  #serviceChanges = 0;
  #endpointChanges = 0;
  #held: HeldTrigger[] = [];

  /** `owner` is sent as `agent` on PROGRAMMED_CHANNEL, so that a listener can tell agents apart. */
  constructor(owner: unknown, now: () => number = Date.now) {
    this.#owner = owner;
    this.#now = now;
    this.#startedMs = now();
  }

  serviceChange(): void {
    this.#serviceChanges++;
  }

  /** `inForce`: whether the change reaches the balancer now; when not, it is timed at synced(). */
  endpointSliceChange(previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined, inForce: boolean): void {
    const slice = current ?? previous;
    // kube-proxy handles IPv4 and IPv6 slices only; FQDN slices are not counted.
    if (slice === undefined || slice.addressType === 'FQDN') return;
    this.#endpointChanges++;
    const t = current?.triggerTimeMs;
    if (current === undefined || t === undefined || t <= this.#startedMs) return;
    if (previous !== undefined && sameEndpoints(previous, current)) return;
    const trigger: HeldTrigger = { family: current.addressType as IPFamily, triggerTimeMs: t };
    if (inForce) this.#publish(trigger);
    else this.#held.push(trigger);
  }

  /** A sync finished: the held endpoint changes are in force now. */
  synced(): void {
    const held = this.#held;
    this.#held = [];
    for (const trigger of held) this.#publish(trigger);
  }

  counts(serviceChangesPending: number): ChangeCounts {
    return { serviceChangesTotal: this.#serviceChanges, serviceChangesPending, endpointChangesTotal: this.#endpointChanges, endpointChangesPending: 0 };
  }

  #publish(trigger: HeldTrigger): void {
    if (!PROGRAMMED_CHANNEL.hasSubscribers) return;
    // Clocks of node and control plane may differ: a trigger time "in the future" counts as 0.
    const seconds = Math.max(0, this.#now() - trigger.triggerTimeMs) / 1000;
    PROGRAMMED_CHANNEL.publish({ agent: this.#owner, family: trigger.family, seconds });
  }
}

function sameEndpoints(a: EndpointSliceSpec, b: EndpointSliceSpec): boolean {
  return isDeepStrictEqual({ ...a, triggerTimeMs: undefined }, { ...b, triggerTimeMs: undefined });
}
