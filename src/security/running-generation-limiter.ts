/**
 * The per-caller cap on generations running at once. A caller holds one slot per generation it
 * started, from the start until the generation ends. Slots are checked lazily: a slot knows how
 * to tell whether its generation still runs (the record's status, or the life of the event stream
 * that owns it), so nothing has to be told when a generation ends and nothing is polled.
 */

/** A slot taken by {@link RunningGenerationLimiter.reserve}. */
export interface GenerationSlot {
  /**
   * From now on the slot is held while `isRunning()` is true (it is asked whenever the caller's
   * slots are counted); once it answers false the slot is free for good.
   */
  holdWhile(isRunning: () => boolean): void;
  /** Frees the slot now (e.g. the start failed). Safe to call more than once. */
  release(): void;
}

interface Slot {
  released: boolean;
  /** Undefined while reserved (held until `holdWhile` or `release`). */
  isRunning?: () => boolean;
}

/** Counts each caller's running generations against a maximum. */
export class RunningGenerationLimiter {
  private readonly slotsByCaller = new Map<string, Set<Slot>>();

  /** @param maxPerCaller generations one caller may run at once; 0 = no limit. */
  constructor(readonly maxPerCaller: number) {}

  /** Whether a cap applies. */
  get enabled(): boolean {
    return this.maxPerCaller > 0;
  }

  /** The caller's generations running (or being started) now. */
  running(callerId: string): number {
    return this.liveSlots(callerId)?.size ?? 0;
  }

  /**
   * Takes a slot for a generation about to start, or undefined when the caller already holds
   * `maxPerCaller` (the caller must be refused). Always succeeds when the cap is off.
   * @param maxPerCaller this caller's own cap instead of the limiter's (a virtual key's; 0 = none).
   */
  reserve(callerId: string, maxPerCaller = this.maxPerCaller): GenerationSlot | undefined {
    let slots = this.liveSlots(callerId);
    if (maxPerCaller > 0 && slots && slots.size >= maxPerCaller) return undefined;
    if (!slots) {
      slots = new Set();
      this.slotsByCaller.set(callerId, slots);
    }
    const slot: Slot = { released: false };
    slots.add(slot);
    const owner = slots;
    return {
      holdWhile: (isRunning) => {
        if (!slot.released) slot.isRunning = isRunning;
      },
      release: () => {
        slot.released = true;
        owner.delete(slot);
        if (owner.size === 0 && this.slotsByCaller.get(callerId) === owner) this.slotsByCaller.delete(callerId);
      },
    };
  }

  /** The caller's slots after dropping those whose generation ended; undefined when none are left. */
  private liveSlots(callerId: string): Set<Slot> | undefined {
    const slots = this.slotsByCaller.get(callerId);
    if (!slots) return undefined;
    for (const slot of slots) {
      if (slot.released || (slot.isRunning && !slot.isRunning())) {
        slot.released = true;
        slots.delete(slot);
      }
    }
    if (slots.size === 0) {
      this.slotsByCaller.delete(callerId);
      return undefined;
    }
    return slots;
  }
}
