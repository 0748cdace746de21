import test from 'ava';
import { InvalidObjectError } from '../../lib/errors.js';
import { nodeEligibility, zoneOf } from '../../lib/model/node.js';
import { nodeFromObject } from '../../lib/model/node-from-object.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function node(metadata: Obj = {}, spec: Obj | undefined = undefined): Obj {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', ...metadata }, ...(spec === undefined ? {} : { spec }) };
}

test('a node: name, labels, deletion and taints; no namespace needed', (t) => {
  t.deepEqual(nodeFromObject(node()), { name: 'node-a', labels: {}, deleting: false, taints: [] });
  const n = nodeFromObject(
    node(
      { labels: { 'topology.kubernetes.io/zone': 'zone-a', 'kubernetes.io/hostname': 'node-a' }, deletionTimestamp: '2026-01-01T00:00:00Z' },
      { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' }, { key: 'dedicated' }] },
    ),
  );
  t.is(zoneOf(n), 'zone-a');
  t.true(n.deleting);
  t.deepEqual(n.taints, [
    { key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' },
    { key: 'dedicated', value: '', effect: '' },
  ]);
});

test("eligibility: an unknown node is eligible; deletion or the autoscaler's taint make it not", (t) => {
  t.deepEqual(nodeEligibility(undefined), { eligible: true });
  t.deepEqual(nodeEligibility(nodeFromObject(node({}, { taints: [{ key: 'dedicated', effect: 'NoSchedule' }] }))), { eligible: true });
  t.deepEqual(nodeEligibility(nodeFromObject(node({ deletionTimestamp: '2026-01-01T00:00:00Z' }))), { eligible: false, reason: 'node node-a is being deleted' });
  t.deepEqual(nodeEligibility(nodeFromObject(node({}, { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] }))), {
    eligible: false,
    reason: 'node node-a is tainted ToBeDeletedByClusterAutoscaler',
  });
  t.is(zoneOf(undefined), '');
});

const invalid: Array<[string, Obj, string, string]> = [
  ['another kind', { ...node(), kind: 'Service' }, 'kind', 'must be Node'],
  ['no name', node({ name: undefined }), 'metadata.name', 'is required'],
  ['bad name', node({ name: 'Node_A' }), 'metadata.name', 'lowercase'],
  ['label not a string', node({ labels: { 'topology.kubernetes.io/zone': 3 } }), 'metadata.labels["topology.kubernetes.io/zone"]', 'must be a string'],
  ['deletionTimestamp not a string', node({ deletionTimestamp: 5 }), 'metadata.deletionTimestamp', 'must be a string'],
  ['taints not a list', node({}, { taints: {} }), 'spec.taints', 'must be a list'],
  ['taint without a key', node({}, { taints: [{ key: 'a' }, { effect: 'NoSchedule' }] }), 'spec.taints[1].key', 'is required'],
  ['taint effect not a string', node({}, { taints: [{ key: 'a', effect: 1 }] }), 'spec.taints[0].effect', 'must be a string'],
];

for (const [title, obj, field, reason] of invalid) {
  test(`rejects ${title}: ${field}`, (t) => {
    const err = t.throws(() => nodeFromObject(obj), { instanceOf: InvalidObjectError });
    t.is(err.field, field);
    t.true(err.reason.includes(reason), `reason "${err.reason}" should include "${reason}"`);
  });
}
