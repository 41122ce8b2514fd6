/** The admin token for /_cluster when the page is not on loopback: kept for this tab only. */
const TOKEN_KEY = 'statewise-admin-token';

export function adminHeaders(): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

export const rememberAdminToken = (token: string) => sessionStorage.setItem(TOKEN_KEY, token);
