/**
 * One line for an error from client-node: its ApiException message is several lines with the
 * whole body and headers, and undici's `fetch failed` hides the reason in `cause`.
 */
export function describeApiError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { code?: unknown; statusCode?: unknown; body?: unknown; cause?: unknown };
  if (typeof e.code === 'number' && 'body' in e) {
    const message = statusMessage(e.body);
    return message ? `HTTP ${e.code}: ${message}` : `HTTP ${e.code}`;
  }
  if (typeof e.statusCode === 'number') return `HTTP ${e.statusCode}: ${e.message}`;
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  const name = e.name === 'Error' || e.name === 'TypeError' ? '' : `${e.name}: `;
  return cause && cause !== e.message ? `${name}${e.message} (${cause})` : `${name}${e.message}`;
}

/** The `message` of a Kubernetes Status body, parsed or not. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof body === 'string') {
    try {
      b = JSON.parse(body);
    } catch {
      return body.length > 200 ? `${body.slice(0, 200)}…` : body || undefined;
    }
  }
  if (typeof b === 'object' && b !== null && typeof (b as { message?: unknown }).message === 'string') return (b as { message: string }).message;
  return undefined;
}
