/**
 * A racing thread for the target-path tests: swaps two paths with renameat2(RENAME_EXCHANGE) in a tight
 * loop on a Worker (its own OS thread, so the swaps land between any two syscalls of the driver on the
 * main thread) until stopped or `maxSwaps` is reached. The loop is bounded either way.
 */

/** renameat2(2) flag: atomically exchange the two names. */
const RENAME_EXCHANGE = 2;
const AT_FDCWD = -100;

const RENAMEAT2 = {
  renameat2: {
    parameters: [
      "i32", // int olddirfd
      "buffer", // const char *oldpath
      "i32", // int newdirfd
      "buffer", // const char *newpath
      "u32", // unsigned int flags
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

const encoder = new TextEncoder();
const cString = (s: string) => encoder.encode(s + "\0");

/** The racer as the test sees it. */
export interface Exchanger {
  /** Stops the loop; resolves with the number of swaps made. */
  stop(): Promise<number>;
}

/** Starts swapping `a` and `b` (both must exist). */
export function startExchanger(a: string, b: string, maxAttempts = 20_000_000): Exchanger {
  const stopFlag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(import.meta.url, { type: "module" });
  const done = new Promise<number>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ swaps?: number; error?: string }>) => {
      if (e.data.error) reject(new Error(e.data.error));
      else resolve(e.data.swaps!);
    };
    worker.onerror = (e) => reject(new Error(e.message));
  });
  worker.postMessage({ a, b, maxSwaps: maxAttempts, stopFlag });
  return {
    async stop() {
      Atomics.store(stopFlag, 0, 1);
      try {
        return await done;
      } finally {
        worker.terminate();
      }
    },
  };
}

interface Job {
  a: string;
  b: string;
  maxSwaps: number;
  stopFlag: Int32Array;
}

// The worker side: runs when this module is loaded as a Worker.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent<Job>) => void;
    postMessage: (data: unknown) => void;
  };
  scope.onmessage = (e) => {
    const { a, b, maxSwaps, stopFlag } = e.data;
    const libc = Deno.dlopen("libc.so.6", RENAMEAT2);
    const pa = cString(a);
    const pb = cString(b);
    let swaps = 0;
    try {
      // A name may be missing for a moment (an unpublish removed the directory): that attempt fails.
      for (let attempt = 0; attempt < maxSwaps && Atomics.load(stopFlag, 0) === 0; attempt++) {
        if (libc.symbols.renameat2(AT_FDCWD, pa, AT_FDCWD, pb, RENAME_EXCHANGE) === 0) swaps++;
      }
      scope.postMessage({ swaps });
    } catch (err) {
      scope.postMessage({ error: (err as Error).message });
    } finally {
      libc.close();
    }
  };
}
