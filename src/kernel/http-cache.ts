/**
 * `If-None-Match` against the current strong ETag (RFC 9110 13.1.2): a list of tags or `*`, compared
 * weakly (a `W/` prefix is ignored), as the RFC asks for this header.
 */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const current = opaque(etag);
  return header.split(',').some((tag) => opaque(tag) === current);
}
