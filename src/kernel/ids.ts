/**
 * Branded ids: a UserId cannot be passed where a SessionId is expected, though both are strings at
 * run time. Every process (app server, balancer, supervisor) and every layer share these.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Public handle of a session: sha256 of the secret cookie value. Safe to show and to log. */
export type SessionId = Brand<string, 'SessionId'>;
export type UserId = Brand<string, 'UserId'>;
export type ServerId = Brand<string, 'ServerId'>;
