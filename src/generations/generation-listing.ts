/**
 * Listing generations, newest first, a page at a time: the filter a caller gives, the opaque
 * cursor of a page's position, and the listing of the records one instance holds. The order is
 * `createdAt` descending, then id descending (ids break ties of the same millisecond), so a cursor
 * names a position that stays put while newer generations start.
 */
import { GatewayError } from './gateway-error.js';
import type { GenerationRecord, GenerationStatus } from './generation-records.js';

/** Most generations one page may hold. */
export const MAX_PAGE_SIZE = 100;

/** Generations a page holds when the caller does not say. */
export const DEFAULT_PAGE_SIZE = 20;

/** Which generations to list, and which page. */
export interface GenerationFilter {
  /** Only generations started by this caller (`Caller.id`); absent = every caller's. */
  owner?: string;
  status?: GenerationStatus;
  kind?: GenerationRecord['kind'];
  /** Page size, 1..{@link MAX_PAGE_SIZE}; default {@link DEFAULT_PAGE_SIZE}. */
  first?: number;
  /** The `endCursor` of the previous page; absent = the first page. */
  after?: string;
}

/** One page of generations, newest first. */
export interface GenerationPage {
  records: GenerationRecord[];
  /** Whether generations follow this page (ask with `after: endCursor`). */
  hasNextPage: boolean;
}

/** A position in the order: the creation time (ms since the epoch) and id of a generation. */
export interface ListPosition {
  createdAtMs: number;
  id: string;
}

/** The opaque cursor of a generation's position (base64url of `createdAtMs:id`). */
export function cursorOf(record: Pick<GenerationRecord, 'createdAt' | 'id'>): string {
  return Buffer.from(`${record.createdAt.getTime()}:${record.id}`).toString('base64url');
}

/**
 * The position a cursor names.
 * @throws GatewayError `BAD_USER_INPUT` for a cursor this service did not make.
 */
export function positionOf(cursor: string): ListPosition {
  const match = /^(\d{1,15}):([A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new GatewayError('BAD_USER_INPUT', 'after: not a cursor of this list (use the endCursor of a page)');
  return { createdAtMs: Number(match[1]), id: match[2]! };
}

/**
 * The page size a filter asks for.
 * @throws GatewayError `BAD_USER_INPUT` when it is outside 1..{@link MAX_PAGE_SIZE}.
 */
export function pageSizeOf(filter: GenerationFilter): number {
  const first = filter.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw new GatewayError('BAD_USER_INPUT', `first: must be between 1 and ${MAX_PAGE_SIZE}`);
  }
  return first;
}

/** Whether `position` comes after `cursor` in the order (newest first). */
export function isAfter(position: ListPosition, cursor: ListPosition | undefined): boolean {
  if (!cursor) return true;
  return position.createdAtMs < cursor.createdAtMs || (position.createdAtMs === cursor.createdAtMs && position.id < cursor.id);
}

/** Whether a record passes the filter's owner, status and kind. */
export function matchesFilter(record: GenerationRecord & { owner?: string }, filter: GenerationFilter): boolean {
  return (
    (filter.owner === undefined || record.owner === filter.owner) &&
    (filter.status === undefined || record.status === filter.status) &&
    (filter.kind === undefined || record.kind === filter.kind)
  );
}

/**
 * One page of the records one instance holds (running and retained), newest first.
 * @throws GatewayError `BAD_USER_INPUT` for a bad page size or cursor.
 */
export function listRecords(records: Iterable<GenerationRecord>, filter: GenerationFilter): GenerationPage {
  const first = pageSizeOf(filter);
  const cursor = filter.after === undefined ? undefined : positionOf(filter.after);
  const matching = [...records]
    .filter((record) => matchesFilter(record, filter) && isAfter({ createdAtMs: record.createdAt.getTime(), id: record.id }, cursor))
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return { records: matching.slice(0, first), hasNextPage: matching.length > first };
}
