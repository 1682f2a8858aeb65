/**
 * A TCP proxy on 127.0.0.1 in front of a real server, which a test can cut: `block()` drops every
 * connection and turns new ones away until `unblock()`. It lets a test change things behind a client's
 * back (the client's watches broken, the server itself running) — TLS passes through untouched.
 */

export class TcpProxy implements AsyncDisposable {
  readonly #listener: Deno.Listener;
  readonly #target: number;
  readonly #open = new Set<Deno.Conn>();
  #blocked = false;
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.Listener, target: number) {
    this.#listener = listener;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /** Starts a proxy to 127.0.0.1:`targetPort` on a free port. */
  static start(targetPort: number): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), targetPort);
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Closes every proxied connection; new ones are closed as soon as they arrive. */
  block(): void {
    this.#blocked = true;
    for (const conn of this.#open) this.#close(conn);
  }

  unblock(): void {
    this.#blocked = false;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      if (this.#blocked) {
        client.close();
        continue;
      }
      this.#pipe(client).catch(() => {});
    }
  }

  async #pipe(client: Deno.Conn): Promise<void> {
    this.#open.add(client);
    let server: Deno.Conn | undefined;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
      this.#open.add(server);
      await Promise.allSettled([
        client.readable.pipeTo(server.writable),
        server.readable.pipeTo(client.writable),
      ]);
    } finally {
      this.#close(client);
      if (server) this.#close(server);
    }
  }

  #close(conn: Deno.Conn): void {
    if (!this.#open.delete(conn)) return;
    try {
      conn.close();
    } catch { /* closed by a pipe already */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.block();
    this.#listener.close();
    await this.#accepting.catch(() => {});
  }
}
