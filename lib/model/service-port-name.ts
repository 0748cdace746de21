/**
 * The key of everything the proxy does: one port of one Service, `namespace/name:portName`
 * (the port name may be empty for a single unnamed port, giving `namespace/name:`).
 */
export type ServicePortName = string & { readonly __brand: 'ServicePortName' };

/**
 * The key of one proxy socket, under which the balancer, the data path, status and metrics know it:
 * the ServicePortName, or, for a service port served by more than one socket (split by traffic
 * policy or IP family), the ServicePortName with the split after it: `ns/web:http (external, IPv6)`.
 * Every ServicePortName is one; a key is not a ServicePortName (rules and logs of the Service want that).
 */
export type ProxySocketKey = ServicePortName | (string & { readonly __brand: 'ProxySocketKey' });

/** `namespace/name`, the key of a Service (and of the endpoints that belong to it). */
export type ServiceKey = string;

/*
 * Keys are joined rather than built with + or a template: those make a chain of V8 cons strings
 * (each part kept, plus a node per +) that a Map or a socket then holds for its life. A joined key
 * is one flat string: for `namespace/name:port` about 40 bytes where the chain held 120, and a
 * first sync keeps several such keys for each of 10,000 ports.
 */

export function servicePortName(namespace: string, name: string, port: string): ServicePortName {
  return [namespace, '/', name, ':', port].join('') as ServicePortName;
}

export function serviceKey(namespace: string, name: string): ServiceKey {
  return [namespace, '/', name].join('');
}

/** The Service key a ServicePortName, or a socket's key, belongs to (a split is after the port name's colon). */
export function serviceKeyOf(key: ProxySocketKey): ServiceKey {
  return key.slice(0, key.lastIndexOf(':'));
}
