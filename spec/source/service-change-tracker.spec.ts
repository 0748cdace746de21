import test from 'ava';
import type { ServiceSpec } from '../../lib/model/service.js';
import { ServiceChangeTracker } from '../../lib/source/service-change-tracker.js';
import { serviceSpec } from '../helpers/service-spec.js';

function svc(port: number): ServiceSpec {
  return serviceSpec({ namespace: 'ns', name: 'svc', clusterIPs: ['10.0.0.1'], ports: [{ name: 'p', protocol: 'TCP', port, targetPort: port, nodePort: 0 }] });
}
const key = 'ns/svc';

// The coalescing rules of the legacy TestOnServiceAddChangeMap.
test('add', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, undefined, svc(1));
  t.deepEqual(tr.get(key), { previous: undefined, current: svc(1) });
});

test('add then update is an add of the latest', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, undefined, svc(1));
  tr.update(key, svc(1), svc(2));
  t.deepEqual(tr.get(key), { previous: undefined, current: svc(2) });
});

test('add then delete is nothing', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, undefined, svc(1));
  t.false(tr.update(key, svc(1), undefined));
  t.is(tr.size, 0);
});

test('update then update keeps the oldest previous', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, svc(1), svc(2));
  tr.update(key, svc(2), svc(3));
  t.deepEqual(tr.get(key), { previous: svc(1), current: svc(3) });
});

test('update then delete is a delete of the oldest previous', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, svc(1), svc(2));
  tr.update(key, svc(2), undefined);
  t.deepEqual(tr.get(key), { previous: svc(1), current: undefined });
});

test('delete then add is an update', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, svc(1), undefined);
  tr.update(key, undefined, svc(2));
  t.deepEqual(tr.get(key), { previous: svc(1), current: svc(2) });
});

test('a change back to where it started is dropped, and drain empties', (t) => {
  const tr = new ServiceChangeTracker();
  tr.update(key, svc(1), svc(2));
  t.false(tr.update(key, svc(2), svc(1)));
  tr.update('ns/other', undefined, svc(5));
  const drained = tr.drain();
  t.deepEqual([...drained.keys()], ['ns/other']);
  t.is(tr.size, 0);
});
