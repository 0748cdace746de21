import YAML from 'yaml';
import { DEFAULT_CONFIG } from './config.js';
import type { Config } from './config.js';
import { FLAGS, camelCase, fileValue } from './flag-table.js';
import { KUBE_PROXY_API_VERSION, KUBE_PROXY_KIND } from './kube-proxy-configuration.js';
import { PROJECT_API_VERSION, PROJECT_KIND } from './project-configuration.js';

/**
 * The effective configuration for --write-config-to: a v1alpha1 KubeProxyConfiguration with the
 * settings v1alpha1 has a field for (the sync periods under `iptables`, as in v1alpha1), then a
 * KubeUserspaceProxyConfiguration with every other setting a flag can make. Read back with
 * --config, it gives the same Config.
 */
export function renderConfigFile(config: Config): string {
  const kubeProxy: Record<string, unknown> = {
    apiVersion: KUBE_PROXY_API_VERSION,
    kind: KUBE_PROXY_KIND,
    // "" rather than "userspace": kube-proxy 1.26 and later refuse the userspace mode, and the
    // mode of this proxy needs no saying.
    mode: '',
  };
  const project: Record<string, unknown> = { apiVersion: PROJECT_API_VERSION, kind: PROJECT_KIND };
  for (const spec of FLAGS) {
    if (spec.inFile === false) continue;
    const value = fileValue(spec, config);
    if (spec.kubeProxyField) {
      setPath(kubeProxy, spec.kubeProxyField, value ?? '');
      // "" there means kube-proxy's default, so a setting turned off ("" metricsBindAddress)
      // has to be said again where "" means "".
      if (value === '' && (fileValue(spec, DEFAULT_CONFIG) ?? '') !== '') project[camelCase(spec.name)] = value;
    } else if (value !== undefined) project[camelCase(spec.name)] = value;
  }
  return `${YAML.stringify(kubeProxy)}---\n${YAML.stringify(project)}`;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = obj;
  for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
  at[keys.at(-1)!] = value;
}
