import test from 'ava';
import { InvalidObjectError } from '../../lib/errors.js';
import { serviceFromObject } from '../../lib/model/service-from-object.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { serviceSpec } from '../helpers/service-spec.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- objects as YAML gives them, mutated freely by the cases

function service(spec: Obj = {}, metadata: Obj = {}, extra: Obj = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', ...metadata },
    spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }], ...spec },
    ...extra,
  };
}

const DEFAULTS: ServiceSpec = serviceSpec({ ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 0 }] });

test('a minimal service gets every default', (t) => {
  t.deepEqual(serviceFromObject(service()), DEFAULTS);
});

test('kind and apiVersion may be left out (API list items)', (t) => {
  const { apiVersion: _a, kind: _k, ...bare } = service();
  t.deepEqual(serviceFromObject(bare), DEFAULTS);
});

test('every field is read and normalised', (t) => {
  const svc = serviceFromObject(
    service(
      {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10', '2001:DB8::10'],
        externalIPs: ['192.0.2.1', '2001:db8:0:0::5'],
        ports: [
          { name: 'http', port: 80, targetPort: 'web', nodePort: 30080 },
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
          { name: 'sctp', port: 9, protocol: 'SCTP', targetPort: 0 },
        ],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        internalTrafficPolicy: 'Local',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        trafficDistribution: 'PreferSameZone',
      },
      { namespace: 'shop', labels: { app: 'web', 'example.com/tier': 'front', empty: null } },
      { status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }, { hostname: 'lb.example.com' }, { ip: '2001:db8::7' }] } } },
    ),
  );
  t.deepEqual(svc, {
    namespace: 'shop',
    name: 'web',
    type: 'LoadBalancer',
    clusterIPs: ['10.96.0.10', '2001:db8::10'],
    headless: false,
    externalIPs: ['192.0.2.1', '2001:db8::5'],
    loadBalancerIPs: ['203.0.113.7', '2001:db8::7'],
    ports: [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 'web', nodePort: 30080 },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 0 },
      { name: 'sctp', protocol: 'SCTP', port: 9, targetPort: 9, nodePort: 0 },
    ],
    sessionAffinity: 'ClientIP',
    affinityTimeoutSeconds: 60,
    internalTrafficPolicy: 'Local',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 32000,
    trafficDistribution: 'PreferSameZone',
    labels: { app: 'web', 'example.com/tier': 'front', empty: '' },
    externalName: '',
    publishNotReadyAddresses: false,
  });
});

test('publishNotReadyAddresses, or the tolerate-unready-endpoints annotation, is read', (t) => {
  t.true(serviceFromObject(service({ clusterIP: 'None', publishNotReadyAddresses: true })).publishNotReadyAddresses);
  const annotated = service({ clusterIP: 'None' }, { annotations: { 'service.alpha.kubernetes.io/tolerate-unready-endpoints': 'true' } });
  t.true(serviceFromObject(annotated).publishNotReadyAddresses);
  t.false(serviceFromObject(service({ publishNotReadyAddresses: false })).publishNotReadyAddresses);
});

test('clusterIP None makes a headless service, which may have no ports', (t) => {
  const svc = serviceFromObject(service({ clusterIP: 'None', ports: [] }));
  t.true(svc.headless);
  t.deepEqual(svc.clusterIPs, []);
  t.deepEqual(svc.ports, []);
  t.true(serviceFromObject(service({ clusterIP: undefined, clusterIPs: ['None'], ports: undefined })).headless);
});

test('ExternalName services have no cluster IPs and may have no ports', (t) => {
  const svc = serviceFromObject(service({ type: 'ExternalName', externalName: 'db.example.com', clusterIP: undefined, ports: undefined }));
  t.is(svc.type, 'ExternalName');
  t.false(svc.headless);
  t.deepEqual(svc.clusterIPs, []);
  t.deepEqual(svc.ports, []);
  t.is(svc.externalName, 'db.example.com');
  // A trailing dot is allowed (an absolute name); case does not matter to DNS.
  t.is(serviceFromObject(service({ type: 'ExternalName', externalName: 'db.example.com.', clusterIP: undefined })).externalName, 'db.example.com');
  // Other types ignore the field, as the proxy and the DNS server do.
  t.is(serviceFromObject(service({ externalName: 'db.example.com' })).externalName, '');
});

test('an empty or missing clusterIP gives no cluster IPs', (t) => {
  t.deepEqual(serviceFromObject(service({ clusterIP: '' })).clusterIPs, []);
  t.deepEqual(serviceFromObject(service({ clusterIP: undefined })).clusterIPs, []);
  t.deepEqual(serviceFromObject(service({ clusterIP: null, clusterIPs: null })).clusterIPs, []);
});

test('clusterIPs takes precedence over a missing clusterIP', (t) => {
  t.deepEqual(serviceFromObject(service({ clusterIP: undefined, clusterIPs: ['fd00::10'] })).clusterIPs, ['fd00::10']);
});

test('the affinity timeout is normalised away without ClientIP affinity', (t) => {
  t.is(serviceFromObject(service({ sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } } })).affinityTimeoutSeconds, 10800);
  t.is(serviceFromObject(service({ sessionAffinity: 'ClientIP' })).affinityTimeoutSeconds, 10800);
});

test('ports keep their spec order', (t) => {
  const names = ['z', 'a', 'm'];
  const svc = serviceFromObject(service({ ports: names.map((name, i) => ({ name, port: 1000 + i })) }));
  t.deepEqual(
    svc.ports.map((p) => p.name),
    names,
  );
});

test('trafficDistribution: each value the API accepts is kept; unset, null and empty are ""', (t) => {
  for (const v of ['PreferClose', 'PreferSameZone', 'PreferSameNode']) t.is(serviceFromObject(service({ trafficDistribution: v })).trafficDistribution, v);
  for (const v of [undefined, null, '']) t.is(serviceFromObject(service({ trafficDistribution: v })).trafficDistribution, '');
});

test('equal inputs give deep-equal outputs', (t) => {
  t.deepEqual(serviceFromObject(service()), serviceFromObject(service()));
  t.notDeepEqual(serviceFromObject(service()), serviceFromObject(service({ ports: [{ port: 81 }] })));
});

const twoPorts = (a: Obj, b: Obj): Obj => ({
  ports: [
    { name: 'a', port: 80, ...a },
    { name: 'b', port: 81, ...b },
  ],
});

const invalid: Array<[string, Obj, string, string]> = [
  ['not a mapping', 'nope' as unknown as Obj, '', 'must be a mapping'],
  ['another kind', { ...service(), kind: 'Pod' }, 'kind', 'must be Service'],
  ['no metadata', { ...service(), metadata: undefined }, 'metadata', 'is required'],
  ['no name', service({}, { name: undefined }), 'metadata.name', 'is required'],
  ['name not a DNS label', service({}, { name: 'Web_1' }), 'metadata.name', 'lowercase'],
  ['name too long', service({}, { name: 'a'.repeat(64) }), 'metadata.name', 'at most 63'],
  ['namespace not a string', service({}, { namespace: 7 }), 'metadata.namespace', 'must be a string'],
  ['namespace not a DNS label', service({}, { namespace: 'a.b' }), 'metadata.namespace', 'lowercase'],
  ['label not a string', service({}, { labels: { version: 1 } }), 'metadata.labels["version"]', 'must be a string'],
  ['no spec', { ...service(), spec: undefined }, 'spec', 'is required'],
  ['bad type', service({ type: 'Magic' }), 'spec.type', 'must be one of ClusterIP, NodePort, LoadBalancer, ExternalName'],
  ['bad clusterIP', service({ clusterIP: '10.96.0.300' }), 'spec.clusterIP', 'must be a valid IP address'],
  ['clusterIP with a leading zero', service({ clusterIP: '10.96.0.010' }), 'spec.clusterIP', 'must be a valid IP address'],
  ['clusterIP with a zone', service({ clusterIP: 'fe80::1%eth0' }), 'spec.clusterIP', 'must be a valid IP address'],
  ['bad clusterIPs entry', service({ clusterIP: undefined, clusterIPs: ['10.96.0.10', 'fd00::x'] }), 'spec.clusterIPs[1]', 'must be a valid IP address'],
  ['empty clusterIPs entry', service({ clusterIP: undefined, clusterIPs: [''] }), 'spec.clusterIPs[0]', 'must be a valid IP address'],
  ['clusterIP differs from clusterIPs[0]', service({ clusterIP: '10.96.0.11', clusterIPs: ['10.96.0.10'] }), 'spec.clusterIP', 'must equal spec.clusterIPs[0]'],
  ['two cluster IPs of one family', service({ clusterIPs: ['10.96.0.10', '10.96.0.11'] }), 'spec.clusterIPs[1]', 'other IP family'],
  ['three cluster IPs', service({ clusterIPs: ['10.96.0.10', 'fd00::1', '10.96.0.12'] }), 'spec.clusterIPs[2]', 'at most two'],
  ['clusterIPs not a list', service({ clusterIPs: '10.96.0.10' }), 'spec.clusterIPs', 'must be a list'],
  ['ExternalName with a cluster IP', service({ type: 'ExternalName' }), 'spec.clusterIP', 'must be empty for ExternalName'],
  ['ExternalName without externalName', service({ type: 'ExternalName', clusterIP: undefined }), 'spec.externalName', 'is required for ExternalName services'],
  ['bad externalName', service({ type: 'ExternalName', clusterIP: undefined, externalName: 'db_1.example.com' }), 'spec.externalName', 'lowercase'],
  ['publishNotReadyAddresses not a boolean', service({ publishNotReadyAddresses: 'yes' }), 'spec.publishNotReadyAddresses', 'must be true or false'],
  ['bad externalIP', service({ externalIPs: ['192.0.2.1', 'example.com'] }), 'spec.externalIPs[1]', 'must be a valid IP address'],
  ['bad ingress ip', service({}, {}, { status: { loadBalancer: { ingress: [{ ip: 'x' }] } } }), 'status.loadBalancer.ingress[0].ip', 'must be a valid IP address'],
  ['no ports', service({ ports: [] }), 'spec.ports', 'at least one port'],
  [
    'bad tcp-idle-timeout annotation',
    service({}, { annotations: { 'kube-userspace-proxy.io/tcp-idle-timeout': 'soon' } }),
    'metadata.annotations["kube-userspace-proxy.io/tcp-idle-timeout"]',
    'must be a duration',
  ],
  [
    'numeric tcp-idle-timeout annotation',
    service({}, { annotations: { 'kube-userspace-proxy.io/tcp-idle-timeout': 30 } }),
    'metadata.annotations["kube-userspace-proxy.io/tcp-idle-timeout"]',
    'must be a duration',
  ],
  ['ports not a list', service({ ports: { port: 80 } }), 'spec.ports', 'must be a list'],
  ['port entry not a mapping', service({ ports: [80] }), 'spec.ports[0]', 'must be a mapping'],
  ['port missing', service({ ports: [{}] }), 'spec.ports[0].port', 'must be an integer 1-65535'],
  ['port zero', service({ ports: [{ port: 0 }] }), 'spec.ports[0].port', 'must be an integer 1-65535'],
  ['port too big', service({ ports: [{ port: 65536 }] }), 'spec.ports[0].port', 'must be an integer 1-65535'],
  ['port as a string', service({ ports: [{ port: '80' }] }), 'spec.ports[0].port', 'must be an integer 1-65535'],
  ['port not an integer', service({ ports: [{ port: 80.5 }] }), 'spec.ports[0].port', 'must be an integer 1-65535'],
  ['bad protocol', service({ ports: [{ port: 80, protocol: 'tcp' }] }), 'spec.ports[0].protocol', 'must be one of TCP, UDP, SCTP'],
  ['unnamed second port', service(twoPorts({}, { name: undefined })), 'spec.ports[1].name', 'is required when the service has more than one port'],
  ['unnamed first port of two', service(twoPorts({ name: '' }, {})), 'spec.ports[0].name', 'is required when the service has more than one port'],
  ['duplicate port name', service(twoPorts({}, { name: 'a' })), 'spec.ports[1].name', 'must be unique'],
  ['bad port name', service({ ports: [{ name: 'HTTP', port: 80 }] }), 'spec.ports[0].name', 'lowercase'],
  ['duplicate port and protocol', service(twoPorts({}, { port: 80 })), 'spec.ports[1].port', 'must be unique per protocol'],
  ['targetPort too big', service(twoPorts({}, { targetPort: 70000 })), 'spec.ports[1].targetPort', 'must be an integer 1-65535 or a port name'],
  ['targetPort negative', service({ ports: [{ port: 80, targetPort: -1 }] }), 'spec.ports[0].targetPort', 'must be an integer 1-65535 or a port name'],
  ['targetPort numeric string', service({ ports: [{ port: 80, targetPort: '8080' }] }), 'spec.ports[0].targetPort', 'must be an integer 1-65535 or a port name'],
  ['targetPort name too long', service({ ports: [{ port: 80, targetPort: 'a-very-long-port-name' }] }), 'spec.ports[0].targetPort', 'must be an integer 1-65535 or a port name'],
  ['targetPort name uppercase', service({ ports: [{ port: 80, targetPort: 'Http' }] }), 'spec.ports[0].targetPort', 'must be an integer 1-65535 or a port name'],
  ['targetPort name with --', service({ ports: [{ port: 80, targetPort: 'a--b' }] }), 'spec.ports[0].targetPort', 'must be an integer 1-65535 or a port name'],
  ['targetPort boolean', service({ ports: [{ port: 80, targetPort: true }] }), 'spec.ports[0].targetPort', 'must be an integer 1-65535 or a port name'],
  ['nodePort too big', service({ type: 'NodePort', ports: [{ port: 80, nodePort: 65536 }] }), 'spec.ports[0].nodePort', 'must be an integer 0-65535'],
  ['nodePort on a ClusterIP service', service({ ports: [{ port: 80, nodePort: 30000 }] }), 'spec.ports[0].nodePort', 'may only be set for NodePort and LoadBalancer'],
  ['bad sessionAffinity', service({ sessionAffinity: 'Cookie' }), 'spec.sessionAffinity', 'must be one of None, ClientIP'],
  [
    'timeout zero',
    service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }),
    'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
    'must be an integer 1-86400',
  ],
  [
    'timeout too long',
    service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } } }),
    'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
    'must be an integer 1-86400',
  ],
  ['sessionAffinityConfig not a mapping', service({ sessionAffinityConfig: [] }), 'spec.sessionAffinityConfig', 'must be a mapping'],
  ['bad internalTrafficPolicy', service({ internalTrafficPolicy: 'Node' }), 'spec.internalTrafficPolicy', 'must be one of Cluster, Local'],
  ['bad externalTrafficPolicy', service({ externalTrafficPolicy: 'local' }), 'spec.externalTrafficPolicy', 'must be one of Cluster, Local'],
  ['healthCheckNodePort too big', service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 65536 }), 'spec.healthCheckNodePort', 'must be an integer 1-65535'],
  ['healthCheckNodePort as a string', service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: '32000' }), 'spec.healthCheckNodePort', 'must be an integer 1-65535'],
  [
    'healthCheckNodePort with Cluster policy',
    service({ type: 'LoadBalancer', healthCheckNodePort: 32000 }),
    'spec.healthCheckNodePort',
    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
  ],
  [
    'healthCheckNodePort on a NodePort service',
    service({ type: 'NodePort', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }),
    'spec.healthCheckNodePort',
    "may only be set when `type` is 'LoadBalancer'",
  ],
  [
    'healthCheckNodePort equal to a nodePort',
    service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 30080, ports: [{ port: 80, nodePort: 30080 }] }),
    'spec.healthCheckNodePort',
    'must differ from spec.ports[0].nodePort',
  ],
  ['unknown trafficDistribution', service({ trafficDistribution: 'PreferNearby' }), 'spec.trafficDistribution', 'must be one of PreferClose, PreferSameZone, PreferSameNode'],
  ['trafficDistribution not a string', service({ trafficDistribution: true }), 'spec.trafficDistribution', 'must be a string'],
];

for (const [title, obj, field, reason] of invalid) {
  test(`rejects ${title}: ${field || '(root)'}`, (t) => {
    const err = t.throws(() => serviceFromObject(obj), { instanceOf: InvalidObjectError });
    t.is(err.field, field);
    t.true(err.reason.includes(reason), `reason "${err.reason}" should include "${reason}"`);
    t.is(err.code, 'KUP_ERR_INVALID_OBJECT');
  });
}

test('healthCheckNodePort: read for LoadBalancer + Local; 0 or absent means none, as for every other service', (t) => {
  const lbLocal = { type: 'LoadBalancer', externalTrafficPolicy: 'Local' };
  t.is(serviceFromObject(service({ ...lbLocal, healthCheckNodePort: 31234 })).healthCheckNodePort, 31234);
  t.is(serviceFromObject(service({ ...lbLocal, healthCheckNodePort: 0 })).healthCheckNodePort, 0);
  // The API server allocates one; a manifest may leave it out, and then nothing is served.
  t.is(serviceFromObject(service(lbLocal)).healthCheckNodePort, 0);
  t.is(serviceFromObject(service({ ...lbLocal, healthCheckNodePort: null })).healthCheckNodePort, 0);
  t.is(serviceFromObject(service({ type: 'LoadBalancer', healthCheckNodePort: 0 })).healthCheckNodePort, 0);
  t.is(serviceFromObject(service({ healthCheckNodePort: undefined })).healthCheckNodePort, 0);
});

test('the tcp-idle-timeout annotation is read in ms; absent, the spec has no such field', (t) => {
  const annotated = (v: string): Obj => service({}, { annotations: { 'kube-userspace-proxy.io/tcp-idle-timeout': v } });
  t.is(serviceFromObject(annotated('30s')).tcpIdleTimeoutMs, 30_000);
  t.is(serviceFromObject(annotated('1h30m')).tcpIdleTimeoutMs, 5_400_000);
  t.is(serviceFromObject(annotated('0')).tcpIdleTimeoutMs, 0);
  t.false('tcpIdleTimeoutMs' in serviceFromObject(service()));
  t.deepEqual(serviceFromObject(service({}, { annotations: { other: 'x' } })), serviceFromObject(service()));
});

test('labels keep the order of their keys (integer-like keys first, as objects order them), and only their own keys', (t) => {
  const labels = Object.create({ inherited: 'no' }) as Obj;
  Object.assign(labels, { zone: 'a', '10': 'ten', app: 'web', '2': 'two', empty: null });
  const spec = serviceFromObject(service({}, { labels }));
  t.deepEqual(Object.entries(spec.labels), [
    ['2', 'two'],
    ['10', 'ten'],
    ['zone', 'a'],
    ['app', 'web'],
    ['empty', ''],
  ]);
});
