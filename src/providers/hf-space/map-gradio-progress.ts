/** The progress of a Gradio `generating` event (`docs/protocols.md` §3), as an image progress part's fields. */

/**
 * Progress fields read from a `generating` event's data when it carries them (it usually does not):
 * `progress` in [0, 1] from `progress`, else from Gradio's progress tracker
 * `progress_data: [{index, length, unit, progress, desc}]`; `queuePosition` from `rank` or
 * `queue_position` (an integer ≥ 0). Nothing for other data.
 */
export function mapGradioProgress(data: unknown): { progress?: number; queuePosition?: number } {
  const found: { progress?: number; queuePosition?: number } = {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return found;
  const record = data as Record<string, unknown>;
  const fraction = (value: unknown): number | undefined =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined;
  let progress = fraction(record.progress);
  if (progress === undefined && Array.isArray(record.progress_data)) {
    const first = record.progress_data[0] as Record<string, unknown> | undefined;
    if (first && typeof first === 'object') {
      progress = fraction(first.progress);
      if (progress === undefined && typeof first.index === 'number' && typeof first.length === 'number' && first.length > 0) {
        progress = fraction(first.index / first.length);
      }
    }
  }
  if (progress !== undefined) found.progress = progress;
  const rank = record.rank ?? record.queue_position;
  if (typeof rank === 'number' && Number.isInteger(rank) && rank >= 0) found.queuePosition = rank;
  return found;
}
