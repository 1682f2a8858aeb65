/**
 * Time for the Kubernetes controllers: reading it and being called back later. A parameter, so that unit
 * tests move time by hand (tests/support/kube-twins.ts `FakeClock`) instead of waiting for it.
 */

/** A scheduled callback; cancel() is a no-op once it ran. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; only differences are meaningful. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  after(ms: number, fn: () => void): Timer;
}

/** The process's clock. */
export const systemClock: Clock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const id = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(id) };
  },
};
