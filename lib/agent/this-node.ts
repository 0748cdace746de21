import { logger } from '../log.js';
import { nodeEligibility, zoneOf } from '../model/node.js';
import type { NodeSpec } from '../model/node.js';
import type { NodeTopology } from '../model/topology.js';

const log = logger('agent');

/**
 * What the agent knows of the Node it runs on: its zone and name for topology-aware routing, and
 * whether load balancers should still send it traffic (/healthz `nodeEligible`).
 */
export class ThisNode {
  readonly #name: string;
  #node: NodeSpec | undefined;
  #topology: NodeTopology;

  constructor(name: string) {
    this.#name = name;
    this.#topology = { zone: '', nodeName: name };
  }

  get name(): string {
    return this.#name;
  }

  /** Takes the Node's new state (undefined: unknown); returns true when the topology changed, so endpoints must be recomputed. */
  update(node: NodeSpec | undefined): boolean {
    const before = this.#node;
    this.#node = node;
    const was = nodeEligibility(before);
    const now = nodeEligibility(node);
    if (was.eligible !== now.eligible) {
      if (now.eligible) log.info('node eligible again', { node: this.#name });
      else log.warn('node not eligible', { node: this.#name, reason: now.reason });
    }
    const zone = zoneOf(node);
    if (zone === this.#topology.zone) return false;
    log.info('node zone changed', { node: this.#name, from: this.#topology.zone, to: zone });
    this.#topology = { zone, nodeName: this.#name };
    return true;
  }

  /** The same object until the zone changes. */
  topology(): NodeTopology {
    return this.#topology;
  }

  eligibility(): { readonly eligible: boolean; readonly reason?: string } {
    return nodeEligibility(this.#node);
  }
}
