import { ListenError, PortConflictError } from '../errors.js';

/** The error start() rejects with when binding host:port failed with err. */
export function listenError(host: string, port: number, err: unknown): PortConflictError | ListenError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EADDRINUSE' ? new PortConflictError(host, port, { cause: err }) : new ListenError(host, port, { cause: err });
}
