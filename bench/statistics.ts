/** Small statistics helpers for the benchmark. */

/** The `fraction` quantile (0..1) by nearest rank; NaN for an empty list. Does not modify `values`. */
export function quantile(values: readonly number[], fraction: number): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((left, right) => left - right);
  if (finite.length === 0) return Number.NaN;
  const rank = Math.min(finite.length, Math.max(1, Math.ceil(fraction * finite.length)));
  return finite[rank - 1]!;
}

/** The median (nearest rank); NaN for an empty list. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Formats a number with `digits` decimals, or `—` when it is not finite. */
export function formatNumber(value: number | undefined, digits = 2): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  // A value that rounds to zero is shown without a sign (not `-0.00`).
  const shown = Math.abs(value) < 0.5 * 10 ** -digits ? 0 : value;
  return shown.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
