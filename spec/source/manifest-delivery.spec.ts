import test from 'ava';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { NodeSpec } from '../../lib/model/node.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import type { ServiceKey } from '../../lib/model/service-port-name.js';
import { ManifestDelivery } from '../../lib/source/manifest-delivery.js';
import type { MergedState } from '../../lib/source/manifest-delivery.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';
import { serviceSpec } from '../helpers/service-spec.js';

/** What a handler was given, in order. */
class Recorder implements ServiceSourceHandler {
  readonly events: string[] = [];
  readonly services = new Map<string, ServiceSpec>();
  onServiceChange(key: string, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    this.events.push(`${key} ${ports(previous)} -> ${ports(current)}`);
    if (current) this.services.set(key, current);
    else this.services.delete(key);
  }
  onEndpointSliceChange(key: string, _previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    this.events.push(`slice ${key} ${current === undefined ? 'removed' : current.endpoints.length}`);
  }
  onSynced(): void {
    this.events.push('synced');
  }
  onNodeChange(node: NodeSpec | undefined): void {
    this.events.push(`node ${node?.name}`);
  }
}

function ports(s: ServiceSpec | undefined): string {
  return s === undefined ? '-' : s.ports.map((p) => p.port).join(',');
}

function web(name: string, ...portNumbers: number[]): ServiceSpec {
  return serviceSpec({ name, ports: portNumbers.map((port) => ({ name: `p${port}`, protocol: 'TCP', port, targetPort: port, nodePort: 0 })) });
}

/**
 * The merged files move from `before` to `after` (whole states: every key may differ), as
 * mergeChanges gives them without the changed-keys shortcut.
 */
function state(before: ServiceSpec[], after: ServiceSpec[], node?: NodeSpec): MergedState {
  const map = (list: ServiceSpec[]): Map<ServiceKey, ServiceSpec> => new Map(list.map((s) => [`default/${s.name}` as ServiceKey, s]));
  const all = map(after);
  return { services: [map(before), all], slices: [new Map(), new Map()], allServices: all, allSlices: new Map(), node };
}

function started(initial: ServiceSpec[]): { delivery: ManifestDelivery; rec: Recorder } {
  const rec = new Recorder();
  const delivery = new ManifestDelivery(rec);
  delivery.deliverAll(state([], initial));
  delivery.synced();
  rec.events.length = 0;
  return { delivery, rec };
}

test('additions go out at once: a new Service, and one that gained a port', (t) => {
  const { delivery, rec } = started([web('a', 80)]);
  delivery.deliverAdditions(state([web('a', 80)], [web('a', 80, 81), web('b', 90)]));
  t.deepEqual(rec.events, ['default/a 80 -> 80,81', 'default/b - -> 90']);
  t.false(delivery.holding);
});

test('a change that also removes is held whole until deliverAll, which gives the handler its previous state', (t) => {
  const { delivery, rec } = started([web('a', 80), web('b', 90)]);
  // b gone (a truncated file, say) and c new in the same reading: nothing goes out.
  delivery.deliverAdditions(state([web('a', 80), web('b', 90)], [web('a', 80), web('c', 70)]));
  t.deepEqual(rec.events, []);
  t.true(delivery.holding);
  // A later addition waits behind what is held.
  delivery.deliverAdditions(state([web('a', 80), web('c', 70)], [web('a', 80, 81), web('c', 70)]));
  t.deepEqual(rec.events, []);
  delivery.deliverAll(state([web('a', 80, 81), web('c', 70)], [web('a', 80, 81), web('c', 70)]));
  t.deepEqual(rec.events, ['default/a 80 -> 80,81', 'default/b 90 -> -', 'default/c - -> 70']);
  t.false(delivery.holding);
  t.deepEqual([...rec.services.keys()].sort(), ['default/a', 'default/c']);
});

test('a held removal that the files take back holds nothing: truncate, then write again', (t) => {
  const { delivery, rec } = started([web('a', 80)]);
  delivery.deliverAdditions(state([web('a', 80)], []));
  t.true(delivery.holding);
  // The rest of the file: a as it was, and a new Service, which now goes out at once.
  delivery.deliverAdditions(state([], [web('a', 80), web('d', 60)]));
  t.deepEqual(rec.events, ['default/d - -> 60']);
  t.false(delivery.holding);
  delivery.deliverAll(state([web('a', 80), web('d', 60)], [web('a', 80), web('d', 60)]));
  t.deepEqual(rec.events, ['default/d - -> 60']);
});

test("this node's change is held for deliverAll, and holds the additions after it", (t) => {
  const { delivery, rec } = started([web('a', 80)]);
  const node: NodeSpec = { name: 'node-a', labels: { zone: 'z1' }, deleting: false, taints: [] };
  delivery.deliverAdditions(state([web('a', 80)], [web('a', 80)], node));
  t.true(delivery.holding);
  delivery.deliverAdditions(state([web('a', 80)], [web('a', 80), web('b', 90)], node));
  t.deepEqual(rec.events, []);
  delivery.deliverAll(state([web('a', 80), web('b', 90)], [web('a', 80), web('b', 90)], node));
  t.deepEqual(rec.events, ['default/b - -> 90', 'node node-a']);
});
