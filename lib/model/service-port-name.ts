/**
 * The key of everything the proxy does: one port of one Service, `namespace/name:portName`
 * (the port name may be empty for a single unnamed port, giving `namespace/name:`).
 */
export type ServicePortName = string & { readonly __brand: 'ServicePortName' };

/** `namespace/name`, the key of a Service (and of the endpoints that belong to it). */
export type ServiceKey = string;

export function servicePortName(namespace: string, name: string, port: string): ServicePortName {
  return `${namespace}/${name}:${port}` as ServicePortName;
}

export function serviceKey(namespace: string, name: string): ServiceKey {
  return `${namespace}/${name}`;
}

/** The Service key a ServicePortName belongs to. */
export function serviceKeyOf(spn: ServicePortName): ServiceKey {
  return spn.slice(0, spn.lastIndexOf(':'));
}
