import type { PortAllocator } from './port-allocator.js';

/** No --proxy-port-range: every listener binds port 0 and the kernel picks an ephemeral port. */
export class KernelPortAllocator implements PortAllocator {
  allocateNext(): number {
    return 0;
  }

  release(): void {}
}
