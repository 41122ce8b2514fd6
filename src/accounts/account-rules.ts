/**
 * What a username and a password must be: plain values, shared by the server's checks and the web
 * app's sign-up form (which is bundled for the browser, so nothing here may import Node modules).
 */

/** 3 to 32 characters from a-z, 0-9, _ and -. */
export const USERNAME_PATTERN = '^[a-z0-9_-]{3,32}$';
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 200;
