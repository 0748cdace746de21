import test from 'ava';
import { InvalidObjectError } from '../../lib/errors.js';
import { SCHEDULERS } from '../../lib/model/scheduler-annotation.js';
import { serviceFromObject } from '../../lib/model/service-from-object.js';

function service(annotations?: Record<string, unknown>): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default', ...(annotations ? { annotations } : {}) },
    spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] },
  };
}

const SCHED = 'kube-userspace-proxy.io/scheduler';
const WEIGHTS = 'kube-userspace-proxy.io/weights';

test('the scheduler annotation takes every scheduler; absent, the spec is unchanged (rr)', (t) => {
  for (const name of SCHEDULERS) t.is(serviceFromObject(service({ [SCHED]: name })).scheduler, name);
  const plain = serviceFromObject(service());
  t.false('scheduler' in plain);
  t.false('weights' in plain);
});

test('weights by IPv4, IPv6 (normalised) and Pod name', (t) => {
  const spec = serviceFromObject(service({ [WEIGHTS]: '10.0.0.1=3, web-0=2,2001:DB8:0:0::1=5' }));
  t.deepEqual(spec.weights, { '10.0.0.1': 3, 'web-0': 2, '2001:db8::1': 5 });
});

const bad: [string, Record<string, unknown>, RegExp][] = [
  ['an unknown scheduler', { [SCHED]: 'wlc' }, /must be one of rr, random, lc, sed, nq, sh, mh, got "wlc"/],
  ['dh, with why', { [SCHED]: 'dh' }, /dh \(destination hashing\) is not offered: every client of a service port connects to the same portal/],
  ['a scheduler that is not a string', { [SCHED]: 3 }, /must be one of/],
  ['a weight entry without =', { [WEIGHTS]: '10.0.0.1' }, /each entry must be ADDRESS=WEIGHT or POD=WEIGHT, got "10.0.0.1"/],
  ['a zero weight', { [WEIGHTS]: '10.0.0.1=0' }, /the weight of 10.0.0.1 must be an integer 1-100, got "0"/],
  ['a fractional weight', { [WEIGHTS]: 'web-0=1.5' }, /the weight of web-0 must be an integer 1-100/],
  ['a weight too large', { [WEIGHTS]: 'web-0=101' }, /must be an integer 1-100, got "101"/],
  ['a name that is neither', { [WEIGHTS]: 'Web_0=2' }, /"Web_0" is neither an IP address nor a Pod name/],
  ['an entry given twice', { [WEIGHTS]: '10.0.0.1=2,10.0.0.1=3' }, /10.0.0.1 is given twice/],
];
for (const [what, annotations, message] of bad) {
  test(`a bad annotation is a one-line error naming the field: ${what}`, (t) => {
    const err = t.throws(() => serviceFromObject(service(annotations)), { instanceOf: InvalidObjectError });
    const field = Object.keys(annotations)[0]!;
    t.is(err!.field, `metadata.annotations["${field}"]`);
    t.regex(err!.message, message);
    t.false(err!.message.includes('\n'));
  });
}
