import { ERROR_STATUS, type ErrorCode } from '../../kernel/errors.ts';

/**
 * What each error code of the contract means and what a client should do about it: the
 * documentation of the `Error` component. A `Record` over the closed set, so a code added to
 * src/kernel/errors.ts does not typecheck until it is described here.
 */
export const ERROR_CODE_DOCS: Record<ErrorCode, { meaning: string; action: string }> = {
  invalid_input: {
    meaning: 'The request does not fit the route: a body, path or query value fails its schema or a rule.',
    action: 'Fix the request as the message says; do not retry it unchanged.',
  },
  invalid_json: {
    meaning: 'The body is not valid JSON (or is empty with a JSON content type).',
    action: 'Send a JSON object, or no body and no content-type.',
  },
  idempotency_key_required: {
    meaning: 'An (IK) route was called without an `Idempotency-Key` header.',
    action: 'Send a fresh unique key (e.g. a UUID) per operation, and the same key when retrying it.',
  },
  not_authenticated: {
    meaning: 'The route needs a signed-in user and the request has no valid session or token.',
    action: 'Sign in (POST /api/auth/login, or POST /api/auth/token for a bearer token), then retry.',
  },
  invalid_credentials: {
    meaning: 'Wrong username or password (the answer does not tell which).',
    action: 'Ask the person again; repeated failures are rate limited (429).',
  },
  invalid_token: {
    meaning: 'The bearer access token or the refresh token is invalid, expired or revoked.',
    action:
      'Refresh the access token (POST /api/auth/refresh); if the refresh token is refused too, sign in again. A refresh token is single-use: reusing one revokes its whole sign-in.',
  },
  session_expired: {
    meaning:
      'Reserved: the session ended by its idle or absolute limit (today such a session counts as absent: 401 `not_authenticated`).',
    action: 'Sign in again.',
  },
  forbidden: {
    meaning:
      'Authenticated or not, this caller may not do this (cluster control without the admin token, or from another site).',
    action: 'Do not retry; use the right credential (the admin token printed by `npm start`).',
  },
  csrf_rejected: {
    meaning: 'A cookie-authenticated unsafe request came from another site (Origin / Sec-Fetch-Site).',
    action: 'Call from the same origin, or use a bearer token (exempt from the check).',
  },
  not_found: {
    meaning: 'No such route, or no such resource for this user (an item, order, room or session).',
    action: 'Check the path and the id; a list route (e.g. GET /api/orders) shows what exists.',
  },
  user_not_found: {
    meaning: 'The user named in the request (e.g. a transfer recipient) does not exist.',
    action: 'Check the username; nothing was done.',
  },
  method_not_allowed: {
    meaning: 'The path exists but not with this method; the `Allow` header lists the methods it takes.',
    action: 'Use a method from `Allow`.',
  },
  conflict: {
    meaning:
      'The request clashes with the current state: a name taken (chat room), a cart line past its maximum, a rolling restart already running.',
    action: 'Read the current state, change the request, then retry.',
  },
  username_taken: {
    meaning: 'Registration with a username that exists.',
    action: 'Choose another username.',
  },
  insufficient_funds: {
    meaning: 'The balance is lower than the amount to withdraw or transfer; nothing moved.',
    action: 'Use a smaller amount, or deposit first. Retrying with the same Idempotency-Key replays this answer.',
  },
  idempotency_in_progress: {
    meaning: 'A request with the same Idempotency-Key is still running (on any server).',
    action: 'Retry the same request with the same key after `Retry-After` seconds: it then gets the first answer.',
  },
  body_too_large: {
    meaning: 'The body is larger than the server accepts (64 KiB by default).',
    action: 'Send a smaller body.',
  },
  uri_too_long: {
    meaning: 'A path segment is longer than the router accepts.',
    action: 'Use a shorter id or name.',
  },
  unsupported_media_type: {
    meaning: 'The body is not `application/json`.',
    action: 'Send JSON with `content-type: application/json`.',
  },
  upgrade_required: {
    meaning: 'A plain HTTP request reached the WebSocket endpoint (/ws).',
    action: 'Open it as a WebSocket (`Upgrade: websocket`).',
  },
  idempotency_key_mismatch: {
    meaning: 'The Idempotency-Key was used before by this user for another request: another endpoint, or another body.',
    action: 'Use a new key for a new operation; resend the original body to get the original answer.',
  },
  rate_limited: {
    meaning: 'Too many attempts (sign-in, refresh, or unknown session ids) from this client or for this account.',
    action: 'Wait the `Retry-After` seconds, then retry.',
  },
  internal_error: {
    meaning: 'A bug on the server; it has been logged. Any route may answer it.',
    action:
      'Retry later if the operation is safe to repeat (GET, or an (IK) route with the same key); report it if it persists.',
  },
  bad_gateway: {
    meaning: 'From the load balancer: the app server failed before or while answering, so the outcome is unknown.',
    action: 'Retry a safe or (IK) request (same Idempotency-Key); check the state before repeating anything else.',
  },
  unavailable: {
    meaning:
      'A store (PostgreSQL, Redis) cannot be reached, too many sign-ins are hashing at once, or no app server is up.',
    action: 'Retry after `Retry-After` seconds; (IK) requests with the same key.',
  },
  shutting_down: {
    meaning: 'This app server is draining before it stops (from /readyz, for the balancer).',
    action: 'Send the request again: the balancer routes it to another server.',
  },
  server_unavailable: {
    meaning: 'From the load balancer: the server named in `X-Statewise-Server` is not up.',
    action: 'Pick another server (GET /_cluster lists them) or drop the header.',
  },
  gateway_timeout: {
    meaning:
      'From the load balancer: the app server took the request and did not answer in time, or went silent while holding it (its health checks timed out); the outcome is unknown.',
    action: 'As for `bad_gateway`: retry only what is safe or idempotent by key.',
  },
};

/** The `Error` component's description: why this shape, and every code with its status, meaning and what to do. */
export function errorShapeDescription(): string {
  const rows = (Object.keys(ERROR_STATUS) as ErrorCode[]).map(
    (code) =>
      `| \`${code}\` | ${ERROR_STATUS[code]} | ${ERROR_CODE_DOCS[code].meaning} | ${ERROR_CODE_DOCS[code].action} |`,
  );
  return [
    'Every error any statewise process answers (app server, load balancer, cluster control) has this one shape, `{"error": {"code", "message"}}`, with the status the code always has. `code` is for programs (a closed set: switch on it); `message` is for people and may change.',
    '',
    '**Why not RFC 9457 (`application/problem+json`)?** The contract (API.md, v1) published this shape before this document existed, and the web app, the lab, the load balancer and every test read `error.code`. Problem Details would add nothing a client here needs (`type` URIs and `title` would only restate `code` and `message`) and would break every caller. The shape is kept; a future v2 could offer problem details by content negotiation without changing v1.',
    '',
    '`429` answers carry `Retry-After` (seconds), and so do the `503`s of an unreachable store or of too many sign-ins at once. Any route may also answer `500 internal_error`, and through the load balancer `502 bad_gateway`, `503 unavailable`/`server_unavailable` or `504 gateway_timeout`: those are not repeated on every operation.',
    '',
    '| code | status | meaning | what the client should do |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
