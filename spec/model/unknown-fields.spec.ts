import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { ENDPOINT_SLICE, ENDPOINTS, NODE, SERVICE } from '../../lib/model/object-shapes.js';
import { shapeOf, unknownFields } from '../../lib/model/unknown-fields.js';
import { splitManifest } from '../../lib/source/manifest-parser.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { ROOT } from '../helpers/process.js';

/** The unknown fields of every object of a kind the proxy reads, keyed `Kind name`. */
function unknownIn(text: string, fileName = 'm.yaml'): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const doc of splitManifest(text, fileName)) {
    if ('error' in doc) throw new Error(`${fileName}: document ${doc.document}: ${doc.error}`);
    const obj = doc.object as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const shape = shapeOf(obj['apiVersion'], obj['kind']);
    if (shape) out[`${obj['kind']} ${obj['metadata']?.name}`] = unknownFields(obj, shape);
  }
  return out;
}

test('a misspelt field is named by its path, in lists by index', (t) => {
  const service = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, lables: {app: web}}
spec:
  clusterIP: 10.0.0.1
  ports:
  - {name: http, port: 80}
  - {name: dns, port: 53, protocl: UDP}
  sessionAffinityConfig: {clientIP: {timeoutSecond: 60}}
  externalTraficPolicy: Local
`;
  t.deepEqual(unknownIn(service), { 'Service web': ['metadata.lables', 'spec.ports[1].protocl', 'spec.sessionAffinityConfig.clientIP.timeoutSecond', 'spec.externalTraficPolicy'] });
});

test('unknown fields of EndpointSlice endpoints and ports, Endpoints subsets and Node specs are named', (t) => {
  const text = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, portocol: TCP}]
endpoints:
- addresses: [10.1.0.1]
  condition: {ready: true}
- addresses: [10.1.0.2]
  conditions: {ready: true, healthy: true}
  targetRef: {kind: Pod, name: web-2, namspace: shop}
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 10.2.0.1, nodename: a}]
  port: [{port: 5432}]
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {taints: [{key: k, effect: NoSchedule, values: v}], unschedulabe: true}
status: {addresses: [{type: InternalIP, adress: 10.0.0.9}]}
spec2: {}
`;
  t.deepEqual(unknownIn(text), {
    'EndpointSlice web-1': ['ports[0].portocol', 'endpoints[0].condition', 'endpoints[1].conditions.healthy', 'endpoints[1].targetRef.namspace'],
    'Endpoints db': ['subsets[0].addresses[0].nodename', 'subsets[0].port'],
    'Node node-a': ['spec.taints[0].values', 'spec.unschedulabe', 'status.addresses[0].adress', 'spec2'],
  });
});

test("free maps (labels, annotations, selector) take any key; a value of another type is not this check's business", (t) => {
  const text = `apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {anything: goes, "example.com/x": y}
  annotations: {kube-userspace-proxy.io/scheduler: rr}
spec:
  selector: {app: web, tier: front}
  ports: 80
  sessionAffinityConfig: [1, 2]
`;
  t.deepEqual(unknownIn(text), { 'Service web': [] });
});

test('at most 20 fields are named for one object', (t) => {
  const spec = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`field${i}`, i]));
  t.is(unknownFields({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec }, SERVICE).length, 20);
});

test('an object as the API server returns it, every field filled in, has no unknown field', (t) => {
  const meta = {
    name: 'web',
    generateName: 'web-',
    namespace: 'shop',
    selfLink: '/api/v1/namespaces/shop/services/web',
    uid: 'a1',
    resourceVersion: '42',
    generation: 3,
    creationTimestamp: '2026-01-01T00:00:00Z',
    deletionTimestamp: '2026-01-02T00:00:00Z',
    deletionGracePeriodSeconds: 30,
    labels: { app: 'web' },
    annotations: { note: 'x' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'b2', controller: true, blockOwnerDeletion: true }],
    finalizers: ['service.kubernetes.io/load-balancer-cleanup'],
    managedFields: [
      { manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:ports': {} } }, subresource: 'status' },
    ],
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta,
    spec: {
      ports: [{ name: 'http', protocol: 'TCP', appProtocol: 'http', port: 80, targetPort: 'http', nodePort: 30080 }],
      selector: { app: 'web' },
      clusterIP: '10.0.0.1',
      clusterIPs: ['10.0.0.1', 'fd00::1'],
      type: 'LoadBalancer',
      externalIPs: ['192.0.2.1'],
      sessionAffinity: 'ClientIP',
      loadBalancerIP: '192.0.2.2',
      loadBalancerSourceRanges: ['0.0.0.0/0'],
      externalName: 'web.example.com',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      publishNotReadyAddresses: false,
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'PreferDualStack',
      allocateLoadBalancerNodePorts: true,
      loadBalancerClass: 'example.com/lb',
      internalTrafficPolicy: 'Cluster',
      trafficDistribution: 'PreferClose',
    },
    status: {
      loadBalancer: { ingress: [{ ip: '192.0.2.2', hostname: 'lb.example.com', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP', error: 'x' }] }] },
      conditions: [{ type: 'Ready', status: 'True', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'R', message: 'm' }],
    },
  };
  const reference = { kind: 'Pod', namespace: 'shop', name: 'web-a', uid: 'c3', apiVersion: 'v1', resourceVersion: '7', fieldPath: 'spec.containers{web}' };
  const slice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta,
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: ['10.1.0.1'],
        conditions: { ready: true, serving: true, terminating: false },
        hostname: 'web-a',
        targetRef: reference,
        deprecatedTopology: { 'kubernetes.io/hostname': 'node-a' },
        nodeName: 'node-a',
        zone: 'zone-a',
        hints: { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node-a' }] },
      },
    ],
    ports: [{ name: 'http', protocol: 'TCP', port: 8080, appProtocol: 'http' }],
  };
  const address = { ip: '10.1.0.1', hostname: 'web-a', nodeName: 'node-a', targetRef: reference };
  const endpoints = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: meta,
    subsets: [{ addresses: [address], notReadyAddresses: [address], ports: [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }] }],
  };
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { ...meta, namespace: undefined },
    spec: {
      podCIDR: '10.244.0.0/24',
      podCIDRs: ['10.244.0.0/24'],
      providerID: 'aws:///x',
      unschedulable: false,
      taints: [{ key: 'k', value: 'v', effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' }],
      configSource: { configMap: { namespace: 'kube-system', name: 'c', uid: 'u', resourceVersion: '1', kubeletConfigKey: 'kubelet' } },
    },
    status: {
      capacity: { cpu: '2' },
      allocatable: { cpu: '2' },
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: 't', lastTransitionTime: 't', reason: 'KubeletReady', message: 'ok' }],
      addresses: [{ type: 'InternalIP', address: '10.0.0.9' }],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: 'm',
        systemUUID: 's',
        bootID: 'b',
        kernelVersion: 'k',
        osImage: 'o',
        containerRuntimeVersion: 'c',
        kubeletVersion: 'v1.34.0',
        kubeProxyVersion: 'v1.34.0',
        operatingSystem: 'linux',
        architecture: 'amd64',
        swap: { capacity: 0 },
      },
      images: [{ names: ['nginx'], sizeBytes: 1 }],
      volumesInUse: [],
      volumesAttached: [{ name: 'v', devicePath: '/dev/x' }],
      config: { active: {} },
      runtimeHandlers: [{ name: 'runc', features: { recursiveReadOnlyMounts: true, userNamespaces: true } }],
      features: { supplementalGroupsPolicy: true },
    },
  };
  t.deepEqual(unknownFields(service, SERVICE), []);
  t.deepEqual(unknownFields(slice, ENDPOINT_SLICE), []);
  t.deepEqual(unknownFields(endpoints, ENDPOINTS), []);
  t.deepEqual(unknownFields(node, NODE), []);
  // The check can fail: one more field anywhere is named.
  t.deepEqual(unknownFields({ ...node, status: { ...node.status, nodeInfo: { ...node.status.nodeInfo, cpu: 1 } } }, NODE), ['status.nodeInfo.cpu']);
});

test("the project's example manifests and the specs' manifest builders have no unknown field", async (t) => {
  let objects = 0;
  for (const dir of ['examples/hostnames', 'examples/kubernetes']) {
    for (const file of (await readdir(path.join(ROOT, dir))).filter((f) => /\.(ya?ml|json)$/.test(f))) {
      const found = unknownIn(await readFile(path.join(ROOT, dir, file), 'utf8'), file);
      objects += Object.keys(found).length;
      for (const [object, fields] of Object.entries(found)) t.deepEqual(fields, [], `${dir}/${file}: ${object}`);
    }
  }
  t.true(objects >= 2, 'the examples hold Services and EndpointSlices');
  const built = [
    serviceYaml('web', '10.0.0.1', [{ name: 'http', port: 80, nodePort: 30080, targetPort: 'http', protocol: 'TCP' }], {
      externalIPs: ['192.0.2.1'],
      affinityTimeout: 60,
      type: 'NodePort',
      namespace: 'shop',
      internalTrafficPolicy: 'Local',
      externalTrafficPolicy: 'Local',
    }),
    sliceYaml('web', 'web-1', [{ name: 'http', port: 8080, protocol: 'TCP' }], [{ ip: '10.1.0.1', ready: true, serving: true, terminating: false, nodeName: 'node-a' }]),
  ].join('---\n');
  t.deepEqual(unknownIn(built), { 'Service web': [], 'EndpointSlice web-1': [] });
});
