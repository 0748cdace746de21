/**
 * CPU time to read 10,000 Services and their EndpointSlices from YAML, by each reader the manifest
 * source has, in one run: the plain reader (the common case), js-yaml (what the plain reader
 * leaves, one document at a time) and `yaml` (the reference, for everything else). It is why the
 * project carries three: a start-up with thousands of services waits for this reading, and
 * js-yaml alone costs about twice the plain reader, `yaml` about ten times js-yaml.
 *
 *   node dist/bench/yaml-parse-bench.js [--services 10000] [--rounds 5]
 *
 * First, per style, what the parse thread does with each file at start-up, cold (the first round,
 * as at start-up) and warm: read, convert to the model and write as JSON (manifestToJson).
 *
 * Both styles manifests come in: flow mappings (as the benchmark's generator writes them) and block
 * mappings (as kubectl writes them), in files of 1,000 services. Figures are the median CPU time
 * (user + system) of the rounds, so a busy neighbour on a shared machine distorts them little.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_MANIFEST_DEPTH } from '../lib/source/manifest-limits.js';
import { jsYaml } from '../lib/source/yaml-core-scalars.js';
import { manifestToJson } from '../lib/source/manifest-parse-writer.js';
import { fullDocuments, plainDocuments } from '../lib/source/yaml-documents.js';

const { values } = parseArgs({ options: { services: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '5' } } });
const services = Number(values.services);
const rounds = Number(values.rounds);

const address = (i: number): string => `127.100.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
const STYLES: Record<string, (i: number) => string> = {
  flow: (i) =>
    [
      'apiVersion: v1',
      'kind: Service',
      `metadata: {name: svc-${i}, namespace: bench}`,
      'spec:',
      '  type: ClusterIP',
      `  clusterIP: ${address(i)}`,
      '  ports: [{name: p, protocol: TCP, port: 8080, targetPort: p}]',
      '---',
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      `metadata: {name: svc-${i}-0, namespace: bench, labels: {kubernetes.io/service-name: svc-${i}}}`,
      'addressType: IPv4',
      'ports: [{name: p, protocol: TCP, port: 9000}]',
      'endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]',
    ].join('\n'),
  block: (i) =>
    [
      'apiVersion: v1',
      'kind: Service',
      'metadata:',
      `  name: svc-${i}`,
      '  namespace: bench',
      'spec:',
      '  type: ClusterIP',
      `  clusterIP: ${address(i)}`,
      '  selector:',
      `    app: svc-${i}`,
      '  ports:',
      '  - name: p',
      '    protocol: TCP',
      '    port: 8080',
      '    targetPort: p',
      '---',
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      'metadata:',
      `  name: svc-${i}-0`,
      '  namespace: bench',
      '  labels:',
      `    kubernetes.io/service-name: svc-${i}`,
      'addressType: IPv4',
      'ports:',
      '- name: p',
      '  protocol: TCP',
      '  port: 9000',
      'endpoints:',
      '- addresses:',
      '  - 127.0.0.1',
      '  conditions:',
      '    ready: true',
    ].join('\n'),
};
/** js-yaml alone, a document at a time, as the manifest source calls it for what the plain reader leaves. */
function jsYamlDocuments(text: string): unknown[] {
  const { load, schema } = jsYaml();
  return text.split(/^(?=---(?:[ \t\r\n]|$))/m).map((doc) => load(doc, { schema }));
}
const READERS: Record<string, (text: string) => unknown[] | undefined> = {
  'plain reader': (text) => plainDocuments(text, DEFAULT_MAX_MANIFEST_DEPTH),
  'js-yaml': jsYamlDocuments,
  'yaml (reference)': fullDocuments,
};

function medianCpuMs(files: string[], read: (text: string) => unknown[] | undefined): number {
  return cpuMs(files, read).sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
}

/** The CPU time of each round, in order. */
function cpuMs(files: string[], read: (text: string) => unknown[] | undefined): number[] {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const before = process.cpuUsage();
    let documents = 0;
    for (const f of files) documents += read(f)?.length ?? 0;
    const used = process.cpuUsage(before);
    if (documents !== 2 * services) throw new Error(`read ${documents} documents, expected ${2 * services}`);
    samples.push((used.user + used.system) / 1000);
  }
  return samples;
}

/** The parse thread's work on one file, as documents: the entries sent (a Service or a slice each). */
function parseThreadWork(text: string): unknown[] | undefined {
  const json = manifestToJson(text, 'bench.yaml', {});
  return json === undefined ? undefined : (JSON.parse(json) as unknown[]);
}

const filesOf: Record<string, string[]> = {};
for (const [style, manifest] of Object.entries(STYLES)) {
  filesOf[style] = [];
  for (let i = 0; i < services; i += 1000) {
    filesOf[style].push(`${Array.from({ length: Math.min(1000, services - i) }, (_, k) => manifest(i + k)).join('\n---\n')}\n`);
  }
}

// First, while the code is cold as at start-up (for the first style's first round only).
console.log(`style\tparse thread's work (read, convert, write JSON)\tCPU ms, first round\tmedian of the rest`);
for (const [style, files] of Object.entries(filesOf)) {
  // The JSON.parse that counts the entries is the main thread's, and costs about the same on every round.
  const [first, ...rest] = cpuMs(files, parseThreadWork);
  const warm = rest.sort((a, b) => a - b)[Math.floor(rest.length / 2)] ?? first!;
  console.log(`${style}\tmanifestToJson\t${first!.toFixed(0)}\t${warm.toFixed(0)}`);
}

console.log(`style\treader\tCPU ms for ${services} services (median of ${rounds})\t÷ plain`);
for (const [style, files] of Object.entries(filesOf)) {
  let plain = 0;
  for (const [name, read] of Object.entries(READERS)) {
    const ms = medianCpuMs(files, read);
    plain ||= ms;
    console.log(`${style}\t${name}\t${ms.toFixed(0)}\t${(ms / plain).toFixed(2)}`);
  }
}
