import { parseManifest } from './manifest-parser.js';

/**
 * A Service and its EndpointSlice in the two styles manifests come in (block and flow): enough
 * to run the reader, the classifier and the validators once.
 */
const SAMPLE = `apiVersion: v1
kind: Service
metadata:
  name: warm-up
  namespace: default
  labels: {app: warm-up}
spec:
  type: ClusterIP
  clusterIP: 10.0.0.1
  ports:
  - {name: tcp, protocol: TCP, port: 80, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: warm-up-0, namespace: default, labels: {kubernetes.io/service-name: warm-up}}
addressType: IPv4
ports: [{name: tcp, protocol: TCP, port: 8080}]
endpoints:
- addresses: ["10.1.0.1"]
  conditions: {ready: true}
`;

/**
 * Parses a small manifest once on this thread. The initial load parses on other threads, so the
 * first edit after it met the main thread's parser cold: its first small file took about 10 ms
 * (lazy compilation of the reader and validators), later ones 1-2 ms. Done once after start-up,
 * off the path of any change.
 */
export function warmUpManifestParser(): void {
  parseManifest(SAMPLE, '(warm-up)');
}
