import type { Socket } from 'node:net';

/**
 * The connections of the shared HTTP server that have not become an authenticated WebSocket,
 * counted per client address (the TCP peer's). Past `max` from one address, a new connection is
 * destroyed as soon as it is accepted, before any of its bytes is read: connections from one
 * address (slow or idle requests, refused upgrades still closing) cannot take every descriptor.
 * An accepted WebSocket no longer counts; `max` 0 turns the bound off.
 *
 * Behind a proxy every connection comes from the proxy, so `MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP`
 * is 0 by default with `TRUST_PROXY=true` (docs/operations.md, Slow clients).
 */
export class UnauthenticatedConnections {
  /**
   * By address, then by the peer's port, the sockets counted. The port tells a connection apart
   * from the others of its address while it is open, whichever socket object (a TLS one, or the
   * TCP one under it) reports it.
   */
  private readonly byAddress = new Map<string, Map<number, Socket>>();

  constructor(private readonly max: number) {}

  /** The server's `connection` listener. */
  readonly admit = (socket: Socket): void => {
    const { remoteAddress: address, remotePort: port } = socket;
    if (this.max === 0 || address === undefined || port === undefined) {
      return; // no bound, or the peer reset the connection already
    }
    let open = this.byAddress.get(address);
    if (open !== undefined && open.size >= this.max) {
      socket.destroy();
      return;
    }
    if (open === undefined) {
      open = new Map();
      this.byAddress.set(address, open);
    }
    open.set(port, socket);
    socket.once('close', () => this.forget(address, port, socket));
  };

  /** The socket's WebSocket was accepted: it no longer counts against its address. */
  authenticated(socket: { remoteAddress?: string; remotePort?: number }): void {
    const { remoteAddress: address, remotePort: port } = socket;
    if (address !== undefined && port !== undefined) {
      this.forget(address, port, undefined);
    }
  }

  /** Connections from `address` counted now. */
  count(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /** Forgets the connection at `port`; with `socket`, only if that port is still this socket's. */
  private forget(address: string, port: number, socket: Socket | undefined): void {
    const open = this.byAddress.get(address);
    if (open === undefined || (socket !== undefined && open.get(port) !== socket)) {
      return;
    }
    open.delete(port);
    if (open.size === 0) {
      this.byAddress.delete(address);
    }
  }
}
