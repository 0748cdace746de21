/**
 * Hands out proxy ports: the local listener ports that redirect rules send portal traffic to.
 * allocateNext() returning 0 means "let the kernel choose" (no --proxy-port-range).
 */
export interface PortAllocator {
  /** A free port, or 0 for a kernel-chosen one. Throws PortAllocationError when none is left. */
  allocateNext(): number;
  /** Gives a port back. Releasing 0 or a port not handed out is a no-op. */
  release(port: number): void;
}
