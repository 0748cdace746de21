/**
 * A Kubernetes label selector in its string form (`kubectl get -l`, `?labelSelector=`), parsed as
 * k8s.io/apimachinery's labels.Parse does: comma-joined requirements, all of which must hold.
 *
 * - `key=value`, `key==value`, `key!=value` (`!=` also holds when the label is absent);
 * - `key in (v1,v2)`, `key notin (v1,v2)` (`notin` also holds when the label is absent);
 * - `key` (exists), `!key` (does not exist).
 *
 * Keys are `[prefix/]name` (prefix a DNS subdomain, name at most 63 characters of
 * [A-Za-z0-9._-], starting and ending alphanumeric); values are empty or such a name.
 */
export type LabelRequirement = { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] } | { readonly key: string; readonly op: 'exists' | '!exists' };

export interface LabelSelector {
  /** The selector as given, for logs and the config file. */
  readonly text: string;
  readonly requirements: readonly LabelRequirement[];
  matches(labels: Readonly<Record<string, string>>): boolean;
}

const NAME = /^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Parses a selector; a string result is the problem, naming the requirement at fault. */
export function parseLabelSelector(text: string): LabelSelector | string {
  const requirements: LabelRequirement[] = [];
  for (const raw of splitRequirements(text)) {
    const term = raw.trim();
    if (term === '') {
      if (text.trim() === '') break;
      return `empty requirement in "${text}"`;
    }
    const r = parseRequirement(term);
    if (typeof r === 'string') return `"${term}": ${r}`;
    requirements.push(r);
  }
  return {
    text: text.trim(),
    requirements,
    matches: (labels) => requirements.every((r) => holds(r, labels)),
  };
}

/** Splits at commas outside parentheses (`a in (x,y),b` is two requirements). */
function splitRequirements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

function parseRequirement(term: string): LabelRequirement | string {
  let m = /^!\s*([^\s=!(),]+)$/.exec(term);
  if (m) return withKey(m[1]!, (key) => ({ key, op: '!exists' }));
  m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term);
  if (m) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    if (value !== '' && !NAME.test(value)) return `invalid value "${value}": ${VALUE_RULE}`;
    return withKey(key, (k) => ({ key: k, op: op === '!=' ? 'notin' : 'in', values: [value] }));
  }
  m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term);
  if (m) {
    const [, key, op, list] = m as unknown as [string, string, 'in' | 'notin', string];
    const values = list.split(',').map((v) => v.trim());
    const bad = values.find((v) => v !== '' && !NAME.test(v));
    if (bad !== undefined) return `invalid value "${bad}": ${VALUE_RULE}`;
    if (values.length === 1 && values[0] === '' && list.trim() === '') return `${op} needs at least one value in the parentheses`;
    return withKey(key, (k) => ({ key: k, op, values }));
  }
  m = /^([^\s=!(),]+)$/.exec(term);
  if (m) return withKey(m[1]!, (key) => ({ key, op: 'exists' }));
  return 'expected key, !key, key=value, key==value, key!=value, key in (v1,v2) or key notin (v1,v2)';
}

const VALUE_RULE = 'a label value is empty or at most 63 characters of [A-Za-z0-9._-], starting and ending with a letter or digit';

function withKey(key: string, make: (key: string) => LabelRequirement): LabelRequirement | string {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) return `invalid label key "${key}": the prefix must be a DNS subdomain`;
  if (!NAME.test(name)) return `invalid label key "${key}": the name must be at most 63 characters of [A-Za-z0-9._-], starting and ending with a letter or digit`;
  return make(key);
}

function holds(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.op) {
    case 'exists':
      return has;
    case '!exists':
      return !has;
    case 'in':
      return has && r.values.includes(labels[r.key]!);
    case 'notin':
      return !has || !r.values.includes(labels[r.key]!);
  }
}
