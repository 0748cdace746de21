/** A Service whose spec is `depth` block sequences nested one in another, one space deeper each (3,000 deep is 4.5 MB). */
export function deepBlockService(depth: number): string {
  const lines = ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: deep', 'spec:', '  ports:'];
  for (let i = 0; i < depth; i++) lines.push(`${' '.repeat(2 + i)}-`);
  lines.push(`${' '.repeat(2 + depth)}x`);
  return `${lines.join('\n')}\n`;
}

/** A Service whose spec is `depth` flow mappings nested one in another (100,000 deep is 500 KB). */
export function deepFlowService(depth: number): string {
  return `apiVersion: v1\nkind: Service\nmetadata: {name: deep}\nspec: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`;
}

/** A ConfigMap within the nesting limit that still takes a reader long: `lines` lines of 90-deep flow sequences. */
export function slowConfigMap(lines: number): string {
  const row = `${'['.repeat(90)}1${']'.repeat(90)}`;
  return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: slow}\ndata:\n${Array.from({ length: lines }, (_, i) => `  k${i}: ${row}`).join('\n')}\n`;
}
