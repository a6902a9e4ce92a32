import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** A TCP connection that a server holds a file descriptor for. */
export interface HeldSocket {
  remoteAddress: string;
  remotePort: number;
}

/** TCP states as /proc/net/tcp writes them. */
const LISTEN = '0A';

/**
 * The connections the server on `port` holds a descriptor for, in process `pid` (by default this
 * one: integration tests run the app in the test process): the sockets among the process's open
 * file descriptors whose local port is `port`, except the listener. A connection the server has
 * closed is not listed, whatever state the kernel still keeps it in. Linux, IPv4.
 */
export function heldSockets(port: number, pid: number | 'self' = 'self'): HeldSocket[] {
  const byInode = new Map<string, HeldSocket>();
  for (const line of readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) {
      continue;
    }
    const [, localPort] = fields[1].split(':');
    const [remoteHex, remotePort] = fields[2].split(':');
    if (parseInt(localPort, 16) === port && fields[3] !== LISTEN) {
      byInode.set(fields[9], {
        remoteAddress: ipv4(remoteHex),
        remotePort: parseInt(remotePort, 16),
      });
    }
  }
  const held: HeldSocket[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed between the listing and now: not held
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const socket = inode === undefined ? undefined : byInode.get(inode);
    if (socket !== undefined) {
      held.push(socket);
    }
  }
  return held;
}

/** /proc/net/tcp writes an IPv4 address as 32 bits in host (little-endian) order, in hex. */
function ipv4(hex: string): string {
  return [6, 4, 2, 0].map((at) => parseInt(hex.slice(at, at + 2), 16)).join('.');
}
