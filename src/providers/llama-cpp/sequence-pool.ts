/**
 * A fixed set of interchangeable resources (llama.cpp context sequences) handed out one
 * request at a time; requests beyond the set wait in first-come order.
 */
export class SequencePool<Item> {
  private readonly free: Item[];
  private readonly waiting: Array<{ resolve: (item: Item) => void; reject: (reason: unknown) => void; signal: AbortSignal; onAbort: () => void }> = [];

  constructor(items: Item[]) {
    this.free = [...items];
  }

  /**
   * Resolves with a free item, waiting while all are in use.
   * @throws the signal's reason when `signal` aborts first.
   */
  acquire(signal: AbortSignal): Promise<Item> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const item = this.free.pop();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<Item>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Resets the item (e.g. clears its history), then gives it to the next waiter or back to the pool. */
  async release(item: Item, reset: () => Promise<void>): Promise<void> {
    try {
      await reset();
    } finally {
      const waiter = this.waiting.shift();
      if (waiter) {
        waiter.signal.removeEventListener('abort', waiter.onAbort);
        waiter.resolve(item);
      } else {
        this.free.push(item);
      }
    }
  }

  /** Requests waiting for an item. */
  get queueLength(): number {
    return this.waiting.length;
  }
}
