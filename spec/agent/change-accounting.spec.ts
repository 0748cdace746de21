import diagnosticsChannel from 'node:diagnostics_channel';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ChangeAccounting, PROGRAMMED_CHANNEL } from '../../lib/agent/change-accounting.js';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import { endpointSliceFromObject } from '../../lib/model/endpoint-slice-from-object.js';

/** Built by the real parser, so that it has every field a slice has. */
function slice(ip: string, triggerTimeMs?: number, addressType: EndpointSliceSpec['addressType'] = 'IPv4'): EndpointSliceSpec {
  const annotations = triggerTimeMs !== undefined ? { 'endpoints.kubernetes.io/last-change-trigger-time': new Date(triggerTimeMs).toISOString() } : {};
  return endpointSliceFromObject({
    metadata: { namespace: 'default', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' }, annotations },
    addressType,
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: [{ addresses: [ip] }],
  });
}

/** What this accounting publishes on the channel, as [family, seconds]. */
function observe(t: ExecutionContext, owner: unknown): Array<[string, number]> {
  const seen: Array<[string, number]> = [];
  const fn = (m: unknown): void => {
    const msg = m as { agent: unknown; family: string; seconds: number };
    if (msg.agent === owner) seen.push([msg.family, msg.seconds]);
  };
  diagnosticsChannel.subscribe(PROGRAMMED_CHANNEL.name, fn);
  t.teardown(() => diagnosticsChannel.unsubscribe(PROGRAMMED_CHANNEL.name, fn));
  return seen;
}

test('a change in force is timed from its trigger time to now, by address family', (t) => {
  let now = 10_000;
  const owner = {};
  const acc = new ChangeAccounting(owner, () => now);
  const seen = observe(t, owner);
  now = 20_000;
  acc.endpointSliceChange(undefined, slice('10.0.0.1', 18_500), true);
  acc.endpointSliceChange(undefined, slice('fd00::1', 19_000, 'IPv6'), true);
  t.deepEqual(seen, [
    ['IPv4', 1.5],
    ['IPv6', 1],
  ]);
  t.is(acc.counts(0).endpointChangesTotal, 2);
});

test('not timed: trigger times before the start, deletions, no-op updates, FQDN slices; a trigger time ahead of the clock counts as 0', (t) => {
  let now = 10_000;
  const owner = {};
  const acc = new ChangeAccounting(owner, () => now);
  const seen = observe(t, owner);
  now = 20_000;
  acc.endpointSliceChange(undefined, slice('10.0.0.1', 9_000), true); // the initial list
  acc.endpointSliceChange(slice('10.0.0.1', 9_000), slice('10.0.0.1', 15_000), true); // annotation only
  acc.endpointSliceChange(slice('10.0.0.1', 15_000), undefined, true); // deletion
  acc.endpointSliceChange(undefined, slice('db.example.com', 15_000, 'FQDN'), true);
  acc.endpointSliceChange(undefined, slice('10.0.0.2'), true); // no annotation
  t.deepEqual(seen, []);
  t.is(acc.counts(0).endpointChangesTotal, 4, 'FQDN slices are not counted');
  acc.endpointSliceChange(undefined, slice('10.0.0.3', 25_000), true);
  t.deepEqual(seen, [['IPv4', 0]]);
});

test('a change not yet in force is held and timed when the sync that applies it finishes', (t) => {
  let now = 10_000;
  const owner = {};
  const acc = new ChangeAccounting(owner, () => now);
  const seen = observe(t, owner);
  now = 11_000;
  acc.endpointSliceChange(undefined, slice('10.0.0.1', 10_500), false);
  t.deepEqual(seen, []);
  now = 13_000;
  acc.synced();
  t.deepEqual(seen, [['IPv4', 2.5]]);
  acc.synced();
  t.is(seen.length, 1, 'observed once');
});

test('service changes are counted; pending is what the caller says waits for a sync; endpoint changes are never pending', (t) => {
  const acc = new ChangeAccounting({});
  acc.serviceChange();
  acc.serviceChange();
  acc.endpointSliceChange(undefined, slice('10.0.0.1'), false);
  t.deepEqual(acc.counts(1), { serviceChangesTotal: 2, serviceChangesPending: 1, endpointChangesTotal: 1, endpointChangesPending: 0 });
});
