import test from 'ava';
import { classifyManifestObject, parseManifest, splitManifest } from '../../lib/source/manifest-parser.js';

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.0.10
  ports:
  - port: 80
`;

const SLICE = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.1.0.1]
`;

function summary(text: string, file = 'm.yaml'): unknown[] {
  return parseManifest(text, file).map((e) => {
    const item = e.item === undefined ? '' : `#${e.item}`;
    if (e.type === 'rejected') return `${e.document}${item} rejected ${e.object ?? 'unknown'} ${e.field}: ${e.reason}`;
    return `${e.document}${item} ${e.type} ${e.object}`;
  });
}

test('multi-document YAML: empty and comment-only documents are skipped but counted', (t) => {
  const text = `---\n${SERVICE}---\n---\n# nothing here\n---\n${SLICE}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n---\n`;
  t.deepEqual(summary(text), ['1 service Service default/web', '4 slices EndpointSlice default/web-1', '5 ignored ConfigMap default/cfg']);
});

test('a document that fails to parse is rejected alone', (t) => {
  const text = `${SERVICE}---\nkind: [1, 2\nx: y\n---\n${SLICE}`;
  const out = summary(text);
  t.is(out.length, 3);
  t.is(out[0], '1 service Service default/web');
  t.regex(String(out[1]), /^2 rejected unknown : invalid YAML: .*line 11, column 1$/);
  t.is(out[2], '3 slices EndpointSlice default/web-1');
});

test('duplicate keys are a parse error', (t) => {
  t.regex(String(summary('a: 1\na: 2\n')[0]), /^1 rejected unknown : invalid YAML: Map keys must be unique/);
});

test('a .json file is one JSON value', (t) => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } }, null, '\t');
  t.deepEqual(summary(json, 'svc.JSON'), ['1 service Service shop/web']);
  t.regex(String(summary('{"apiVersion": ', 'svc.json')[0]), /^1 rejected unknown : invalid JSON: /);
});

test('JSON in a .yaml file parses as YAML', (t) => {
  t.deepEqual(summary('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"clusterIP": "None"}}'), ['1 service Service default/web']);
});

test('a List is expanded into its items, numbered from 0', (t) => {
  const list = { apiVersion: 'v1', kind: 'List', items: [yamlObject(SERVICE), null, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }, yamlObject(SLICE)] };
  t.deepEqual(summary(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n${JSON.stringify(list)}`), [
    '1 ignored ConfigMap default/c',
    '2#0 service Service default/web',
    '2#2 ignored Secret default/s',
    '2#3 slices EndpointSlice default/web-1',
  ]);
});

test('items of a typed list inherit its kind and apiVersion', (t) => {
  const list = {
    apiVersion: 'v1',
    kind: 'ServiceList',
    items: [
      { metadata: { name: 'a' }, spec: { clusterIP: 'None' } },
      { kind: 'Service', metadata: { name: 'b' }, spec: { clusterIP: 'None' } },
    ],
  };
  t.deepEqual(summary(JSON.stringify(list)), ['1#0 service Service default/a', '1#1 rejected Service default/b apiVersion: is required']);
});

test('a List whose items is not a list is rejected', (t) => {
  t.deepEqual(summary('apiVersion: v1\nkind: List\nitems: {}\n'), ['1 rejected unknown items: must be a list']);
});

test('validation errors keep the object identity and name the field', (t) => {
  const text = SERVICE.replace('port: 80', 'port: 80\n    targetPort: "8080"');
  const [entry] = parseManifest(text, 'x.yaml');
  t.deepEqual(entry, { document: 1, type: 'rejected', object: 'Service default/web', field: 'spec.ports[0].targetPort', reason: 'must be an integer 1-65535 or a port name' });
});

test('documents that are not objects with apiVersion and kind are rejected', (t) => {
  t.deepEqual(summary('just a string\n---\n- a\n- b\n---\nkind: Service\nmetadata: {name: x}\n---\napiVersion: v1\nmetadata: {name: y}\n'), [
    '1 rejected unknown : must be a mapping with apiVersion and kind',
    '2 rejected unknown : must be a mapping with apiVersion and kind',
    '3 rejected Service default/x apiVersion: is required',
    '4 rejected unknown kind: is required',
  ]);
});

test('other API versions of known kinds are ignored', (t) => {
  t.deepEqual(summary(SLICE.replace('discovery.k8s.io/v1', 'discovery.k8s.io/v1beta1')), ['1 ignored EndpointSlice default/web-1']);
});

test('v1 Endpoints become slices', (t) => {
  const [entry] = parseManifest('apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets:\n- addresses: [{ip: 10.1.0.1}]\n  ports: [{port: 8080}]\n');
  t.is(entry!.type, 'slices');
  if (entry!.type === 'slices')
    t.deepEqual(
      entry.slices.map((s) => s.name),
      ['web/subset-0'],
    );
});

test('splitManifest and classifyManifestObject can be used on their own', (t) => {
  const docs = splitManifest(`${SERVICE}---\n${SLICE}`);
  t.deepEqual(
    docs.map((d) => d.document),
    [1, 2],
  );
  t.is(classifyManifestObject(docs[0]!).type, 'service');
  t.is(classifyManifestObject({ document: 9, error: 'boom' }).type, 'rejected');
});

test('alias bombs are refused', (t) => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++)
    bomb.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(', ')}]`,
    );
  const [entry] = parseManifest(bomb.join('\n'));
  t.is(entry!.type, 'rejected');
});

function yamlObject(text: string): unknown {
  const [doc] = splitManifest(text);
  return (doc as { object: unknown }).object;
}

test('objects labelled headless or for another proxy are ignored with the reason, before validation', (t) => {
  const withLabels = (text: string, labels: string): string => text.replace('metadata:', `metadata:\n  labels: {${labels}}`);
  const bad = withLabels(SERVICE.replace('port: 80', 'port: 0'), '"service.kubernetes.io/headless": ""');
  t.like(parseManifest(bad)[0], { type: 'ignored', object: 'Service default/web', reason: 'labelled service.kubernetes.io/headless' });
  const theirs = withLabels(SERVICE, '"service.kubernetes.io/service-proxy-name": other');
  t.like(parseManifest(theirs)[0], { type: 'ignored', reason: 'labelled service.kubernetes.io/service-proxy-name=other' });
  t.like(parseManifest(theirs, '', undefined, { serviceProxyName: 'kup' })[0], { type: 'ignored', reason: 'labelled service.kubernetes.io/service-proxy-name=other (this proxy is kup)' });
  t.like(parseManifest(withLabels(SERVICE, '"service.kubernetes.io/service-proxy-name": kup'), '', undefined, { serviceProxyName: 'kup' })[0], { type: 'service' });
  // Other kinds are not judged by these labels.
  t.like(parseManifest(withLabels('apiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\n', '"service.kubernetes.io/headless": ""'))[0], { type: 'node', object: 'Node node-a' });
});
