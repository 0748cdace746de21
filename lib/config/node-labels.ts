/** A label name part (the key without its prefix, or a value): what Kubernetes accepts. */
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Parses `--node-labels k=v,k2=v2` (kubelet's syntax) into a label map, checking keys and values
 * as the API server would. Returns every problem as one-line messages instead when there are any.
 */
export function parseNodeLabels(text: string): { labels: Record<string, string> } | { problems: string[] } {
  const labels: Record<string, string> = {};
  const problems: string[] = [];
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq < 0) {
      problems.push(`"${pair}" is not KEY=VALUE`);
      continue;
    }
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const problem =
      keyProblem(key) ??
      (value === '' || (value.length <= 63 && NAME.test(value)) ? undefined : `value "${value}" of ${key} must be at most 63 letters, digits, -, _ and ., starting and ending with a letter or digit`);
    if (problem) problems.push(problem);
    else if (Object.hasOwn(labels, key)) problems.push(`${key} given twice`);
    else labels[key] = value;
  }
  return problems.length > 0 ? { problems } : { labels };
}

function keyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !PREFIX.test(prefix))) return `label key "${key}": the prefix must be a DNS subdomain`;
  if (name.length > 63 || !NAME.test(name)) return `label key "${key}": the name must be at most 63 letters, digits, -, _ and ., starting and ending with a letter or digit`;
  return undefined;
}
