import type { EventEmitter } from 'node:events';

/**
 * Resolves once `start` reports a socket bound, rejects with the socket's first 'error' before
 * that: the one way net.Server.listen and dgram.Socket.bind report a failure.
 */
export function whenBound(socket: EventEmitter, start: (bound: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    start(() => {
      socket.removeListener('error', reject);
      resolve();
    });
  });
}
