import type { IncomingHttpHeaders } from 'node:http';
import { readStickyCookie } from './sticky-cookie.ts';
import type { UpstreamSet, UpstreamState } from './upstreams.ts';

export type BalancePolicy = 'round-robin' | 'sticky';

/** Routes one request to a named server, in either policy (demos, the dashboard, tests). */
export const PIN_HEADER = 'x-statewise-server';

export interface UpstreamRoute {
  kind: 'upstream';
  upstream: UpstreamState;
  /** Named by the pin header: never moved to another server. */
  pinned: boolean;
  /** The response must name its server in the sticky cookie (sticky policy, not pinned). */
  sticky: boolean;
  /** The server the client's cookie names now (maybe a dead or unknown one). */
  cookie: string | undefined;
}

export type Route = UpstreamRoute | { kind: 'pinned-unavailable'; id: string } | { kind: 'none' };

/**
 * Where a request goes: the server named by X-Statewise-Server (or nowhere if it is not up); else,
 * in sticky mode, the server of the sw_server cookie while it is healthy; else the next in turn.
 */
export function chooseUpstream(upstreams: UpstreamSet, policy: BalancePolicy, headers: IncomingHttpHeaders): Route {
  const pin = headers[PIN_HEADER];
  if (typeof pin === 'string' && pin !== '') {
    const upstream = upstreams.get(pin);
    if (upstream?.status !== 'healthy') return { kind: 'pinned-unavailable', id: pin };
    return { kind: 'upstream', upstream, pinned: true, sticky: false, cookie: undefined };
  }
  if (policy === 'sticky') {
    const cookie = readStickyCookie(headers.cookie);
    const home = cookie === undefined ? undefined : upstreams.get(cookie);
    if (home?.status === 'healthy') return { kind: 'upstream', upstream: home, pinned: false, sticky: true, cookie };
    const next = upstreams.next();
    return next ? { kind: 'upstream', upstream: next, pinned: false, sticky: true, cookie } : { kind: 'none' };
  }
  const next = upstreams.next();
  return next
    ? { kind: 'upstream', upstream: next, pinned: false, sticky: false, cookie: undefined }
    : { kind: 'none' };
}

/** Whether the answer from `upstream` must (re)write the cookie: it is not the one the client has. */
export function needsStickyCookie(route: UpstreamRoute, upstream: UpstreamState): boolean {
  return route.sticky && route.cookie !== upstream.id;
}
