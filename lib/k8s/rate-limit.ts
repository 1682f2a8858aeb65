/**
 * Client-side rate limit of API requests (client-go's token bucket): `burst` requests may go at once,
 * then `qps` per second; callers wait their turn in arrival order.
 */

/** A token bucket; `now` is a parameter so tests can move time. */
export class TokenBucket {
  #tokens: number;
  #last: number;
  /** Waiters in arrival order. */
  #queue: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`invalid rate limit: qps ${qps}, burst ${burst}`);
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes a token if one is available now, without waiting. */
  tryTake(): boolean {
    this.#refill();
    if (this.#queue.length > 0 || this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Resolves once the caller may send a request; rejects if `signal` aborts first. */
  take(signal?: AbortSignal): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#queue = this.#queue.filter((w) => w !== waiter);
        if (this.#queue.length === 0) {
          clearTimeout(this.#timer);
          this.#timer = undefined;
        }
        reject(signal!.reason);
      };
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
      this.#schedule();
    });
  }

  #refill(): void {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.qps);
    this.#last = now;
  }

  /** Wakes waiters as tokens become available. */
  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#refill();
    while (this.#queue.length > 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      this.#queue.shift()!();
    }
    if (this.#queue.length === 0) return;
    const waitMs = Math.max(1, ((1 - this.#tokens) / this.qps) * 1000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#schedule();
    }, waitMs);
  }
}
