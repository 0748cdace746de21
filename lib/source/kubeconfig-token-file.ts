import fs from 'node:fs';
import path from 'node:path';
import type { KubeConfig, User } from '@kubernetes/client-node';
import YAML from 'yaml';

/**
 * Makes client-node honour kubectl's `users[].user.tokenFile`, which kubeadm's kube-proxy
 * kubeconfig (and examples/kubernetes/configmap.yaml) uses to name the pod's service-account
 * token. client-node 2.0.1 does not read that field: it knows `token` and a `token-file` that no
 * other client writes, read once at load. Without this, such a kubeconfig sends no credentials
 * and every request is refused with 401.
 *
 * Each user with a tokenFile (and no `token`, which wins in client-go too) is given
 * client-node's file-token provider, the form its own in-cluster config uses: it re-reads the
 * file every minute, as client-go does, so the kubelet's rotation of projected service-account
 * tokens is followed. A relative path is taken from the kubeconfig's directory, as kubectl does.
 */
export function applyTokenFiles(kc: KubeConfig, file: string): void {
  const tokenFiles = tokenFilesByUser(fs.readFileSync(file, 'utf8'));
  if (tokenFiles.size === 0) return;
  const dir = path.dirname(file);
  const users = kc.getUsers().map((user): User => {
    const tokenFile = tokenFiles.get(user.name);
    if (tokenFile === undefined || user.token || user.authProvider || user.exec) return user;
    return { ...user, authProvider: { name: 'tokenFile', config: { tokenFile: path.resolve(dir, tokenFile) } } };
  });
  kc.loadFromOptions({ clusters: kc.getClusters(), contexts: kc.getContexts(), users, currentContext: kc.getCurrentContext() });
}

/** users[].name → users[].user.tokenFile, read from the kubeconfig's text (client-node drops the field). */
function tokenFilesByUser(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const doc: unknown = YAML.parse(text);
  const users = (doc as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) return out;
  for (const entry of users as unknown[]) {
    const { name, user } = (entry ?? {}) as { name?: unknown; user?: { tokenFile?: unknown } | null };
    const tokenFile = user?.tokenFile;
    if (typeof name === 'string' && typeof tokenFile === 'string' && tokenFile !== '') out.set(name, tokenFile);
  }
  return out;
}
