/** The label by which a Service (and, copied from it, its slices and Endpoints) names the proxy that handles it. */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';

/**
 * The label the endpoint controllers put on the EndpointSlices and Endpoints of a headless
 * Service (and that may be put on a Service itself): nothing a service proxy should serve.
 */
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

/**
 * Why an object with these (raw, unvalidated) labels is not this proxy's to serve, or undefined
 * when it is. kube-proxy's informers select `!service.kubernetes.io/service-proxy-name,
 * !service.kubernetes.io/headless`; `proxyName` (--service-proxy-name) extends that to "absent, or
 * equal to this name". The labels are read raw so that another proxy's objects are dropped before
 * they are validated (and warned about). Used for API objects and manifests alike.
 */
export function notServedBecause(labels: unknown, proxyName: string | undefined): string | undefined {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return undefined;
  if (Object.hasOwn(labels, HEADLESS_LABEL)) return `labelled ${HEADLESS_LABEL}`;
  if (!Object.hasOwn(labels, SERVICE_PROXY_NAME_LABEL)) return undefined;
  const name = (labels as Record<string, unknown>)[SERVICE_PROXY_NAME_LABEL];
  if (proxyName !== undefined && proxyName !== '' && name === proxyName) return undefined;
  return `labelled ${SERVICE_PROXY_NAME_LABEL}=${String(name)}${proxyName ? ` (this proxy is ${proxyName})` : ''}`;
}

/** The labels of a raw object, for notServedBecause. */
export function rawLabels(obj: unknown): unknown {
  const metadata = (obj as { metadata?: unknown } | null | undefined)?.metadata;
  return typeof metadata === 'object' && metadata !== null ? (metadata as { labels?: unknown }).labels : undefined;
}
