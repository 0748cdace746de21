import { nativeBinding } from './tcp-native.js';

/**
 * Gives the C heap's free memory back to the system (glibc's malloc_trim, through the native TCP
 * addon): true when some went back; false where there is no addon, or nothing to give.
 *
 * glibc keeps what a thread freed in that thread's arena after the thread has ended. The manifest
 * parse thread of a start-up from 10,000 Services leaves several MiB there, resident in a process
 * that then never parses that much again.
 */
export function returnFreedMemory(): boolean {
  const trim = nativeBinding()?.trimHeap;
  return typeof trim === 'function' ? trim() : false;
}
