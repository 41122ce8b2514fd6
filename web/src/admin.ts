/**
 * Cluster control (/_cluster): its own typed client, off the "served by" trail (the supervisor
 * answers, not an app server), and the admin token it needs when the page is not on loopback,
 * kept for this tab only.
 */
import { createApiClient } from '../../src/client/api-client.ts';

const TOKEN_KEY = 'statewise-admin-token';

/** The typed client for /_cluster: send `adminHeaders()` with every call. */
export const control = createApiClient();

export function adminHeaders(): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

export const rememberAdminToken = (token: string) => sessionStorage.setItem(TOKEN_KEY, token);
