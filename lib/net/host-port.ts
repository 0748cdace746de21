/** An address and port as users write them in flags and as listeners report them. */
export interface HostPort {
  /** An IP literal (IPv6 without brackets) or a host name such as `localhost`. */
  readonly host: string;
  /** 0 lets the kernel choose (tests); the flags have real defaults. */
  readonly port: number;
}

/** Formats an address and port the way users type them: `[::1]:80` for IPv6. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
