const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text made safe for HTML element content and for double- or single-quoted attribute values. Names
 * of Kubernetes objects are DNS labels, but what the page shows also comes from errors, addresses
 * and annotations, so everything variable goes through this.
 */
export function escapeHtml(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}
