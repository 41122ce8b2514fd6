/**
 * Words a person can act on, by the contract's error code: used when the answer carries no message
 * of its own (the servers write theirs for people, naming what to change, so theirs come first).
 */
const WORDS: Record<string, string> = {
  network: 'The system could not be reached. Is it running?',
  invalid_input: 'Something in the form is not right.',
  invalid_json: 'The request was not understood.',
  not_authenticated: 'Please sign in first.',
  invalid_credentials: 'That username and password do not match.',
  session_expired: 'Your session has ended. Please sign in again.',
  forbidden: 'You are not allowed to do that.',
  csrf_rejected: 'The request came from another site and was refused.',
  not_found: 'That does not exist (any more).',
  user_not_found: 'There is no user with that name.',
  conflict: 'That exists already.',
  username_taken: 'That username is taken; choose another.',
  insufficient_funds: 'There is not enough money in the account.',
  idempotency_in_progress: 'The same request is still running; wait a moment.',
  rate_limited: 'Too many attempts; wait a little and try again.',
  unavailable: 'A store behind the servers is unavailable; try again shortly.',
  shutting_down: 'That server is shutting down; try again.',
  server_unavailable: 'That server is not up.',
  bad_gateway: 'The server failed while answering; the outcome is unknown.',
  gateway_timeout: 'The server did not answer in time.',
  internal_error: 'Something went wrong on the server.',
};

export function explain(code: string, detail: string): string {
  return detail.trim() || WORDS[code] || `The request failed (${code}).`;
}
