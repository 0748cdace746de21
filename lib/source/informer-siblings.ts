/** An informer that can be told to stop waiting out its back-off. */
export interface RetryableInformer {
  /** When a restart after a failure is pending, make it now; otherwise nothing. */
  retryNow(): void;
}

/**
 * The informers of one API server, which fail and recover together. When one of them gets
 * through again, the server is back, and the others' back-off (up to its cap, 30 s by default)
 * only delays what they have to catch up: without this a Service created during an outage was
 * seen 23.5 s after its EndpointSlices, the Services informer still waiting out a delay the
 * EndpointSlices informer happened to have finished. So a recovery retries every sibling at once.
 *
 * A recovery is a change from failing to connected, which happens once per outage, so this cannot
 * turn into a retry loop: a sibling that fails again goes on with its own back-off.
 */
export class InformerSiblings {
  readonly #members = new Set<RetryableInformer>();

  join(member: RetryableInformer): void {
    this.#members.add(member);
  }

  leave(member: RetryableInformer): void {
    this.#members.delete(member);
  }

  /** `from` reached the API server again after failing. */
  recovered(from: RetryableInformer): void {
    for (const member of this.#members) if (member !== from) member.retryNow();
  }
}
