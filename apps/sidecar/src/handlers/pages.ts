// Paging of the list RPCs: page sizes, page tokens (opaque to clients: base64url JSON of a keyset
// position, read back only here) and the byte budget that keeps every page within the message limit.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';

/** A list's page size: default and most items (points for batch metrics) per page. */
export interface PageSize {
  readonly fallback: number;
  readonly max: number;
}

export const EPOCH_PAGE: PageSize = { fallback: 100, max: 1000 };
export const ARTIFACT_PAGE: PageSize = { fallback: 100, max: 1000 };
export const BATCH_POINT_PAGE: PageSize = { fallback: 262_144, max: 4_194_304 };

/** `page_size` checked: 0 means the default. */
export function pageSize(requested: number, size: PageSize): number {
  if (!Number.isInteger(requested) || requested < 0 || requested > size.max) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `page_size must be between 1 and ${size.max} (0 means ${size.fallback}); got ${requested}`,
    );
  }
  return requested || size.fallback;
}

export function encodeToken(position: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

const BAD_TOKEN =
  'page_token is not one this sidecar issued; pass next_page_token back unchanged, or start from an empty page_token';

/** The position in `token`; INVALID_ARGUMENT unless it holds exactly `kinds`. */
export function decodeToken<K extends readonly ('string' | 'number')[]>(
  token: string,
  kinds: K,
): { [I in keyof K]: K[I] extends 'string' ? string : number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new RpcError(Status.INVALID_ARGUMENT, BAD_TOKEN);
  }
  const ok =
    Array.isArray(parsed) &&
    parsed.length === kinds.length &&
    parsed.every((v, i) =>
      kinds[i] === 'number' ? Number.isSafeInteger(v) && v >= 0 : typeof v === 'string',
    );
  if (!ok) throw new RpcError(Status.INVALID_ARGUMENT, BAD_TOKEN);
  return parsed as { [I in keyof K]: K[I] extends 'string' ? string : number };
}

/** Bytes an item takes in a repeated message field: its encoding plus tag and length (≤ 6 bytes). */
export function fieldBytes(encodedLength: number): number {
  return encodedLength + 6;
}

/**
 * How many of `items` fit in `budget` bytes (`bytesOf` each), at least one: a page always moves on,
 * and no single stored item is larger than a message the sidecar accepted.
 */
export function fitting<T>(items: readonly T[], budget: number, bytesOf: (item: T) => number): number {
  let used = 0;
  for (let i = 0; i < items.length; i++) {
    used += bytesOf(items[i]!);
    if (used > budget) return Math.max(1, i);
  }
  return items.length;
}
