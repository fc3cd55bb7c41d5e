/** Counting what went wrong on one path of the benchmark. */
import type { FailureCounts } from './report.js';
import type { StreamResult } from './stream-clients.js';

/** Tallies failed streams and streams with the wrong text, keeping up to three distinct messages. */
export class FailureTally {
  readonly counts: FailureCounts = { errors: 0, wrongText: 0, examples: [] };

  /**
   * Records a result (a stream's, or any request's with its text); returns true when it is clean,
   * with the expected text (`expectedText` undefined: any text).
   */
  check(result: Pick<StreamResult, 'error' | 'text'>, expectedText: string | undefined): boolean {
    if (result.error !== undefined) {
      this.counts.errors += 1;
      this.example(result.error);
      return false;
    }
    if (expectedText !== undefined && result.text !== expectedText) {
      this.counts.wrongText += 1;
      this.example(`text differs from the expected text (got ${result.text.length} characters, expected ${expectedText.length})`);
      return false;
    }
    return true;
  }

  /** Keeps `message` as an example when fewer than three are kept and it is new. */
  example(message: string): void {
    if (this.counts.examples.length < 3 && !this.counts.examples.includes(message)) this.counts.examples.push(message);
  }

  /** Errors plus wrong texts. */
  get total(): number {
    return this.counts.errors + this.counts.wrongText;
  }
}
