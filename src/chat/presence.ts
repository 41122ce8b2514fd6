/**
 * Presence in shared session state: the hash `presence:<roomId>` has one field per user and server
 * (`alice@s2`) whose value is when it expires (epoch ms). A server renews its users' fields by
 * heartbeat; when it dies nobody renews them, so its users drop out after the TTL unless they are
 * connected elsewhere (another field of theirs): no flicker for a user who reconnected.
 */

/** The session-state hash of a room's presence. */
export const presenceKey = (roomId: string) => `presence:${roomId}`;

export const presenceField = (username: string, serverId: string) => `${username}@${serverId}`;

/** How long past its expiry a field is kept before any server deletes it: long enough to be clearly dead. */
const DEAD_FIELD_GRACE_MS = 60_000;

/** The usernames of live fields, sorted, each once. */
export function onlineFrom(fields: Record<string, string>, now: number): string[] {
  const online = new Set<string>();
  for (const [field, expiresAt] of Object.entries(fields)) {
    if (Number(expiresAt) > now) online.add(field.slice(0, field.lastIndexOf('@')));
  }
  return [...online].sort();
}

/** Fields whose server has not renewed them for a long time: safe for anyone to delete. */
export function deadFields(fields: Record<string, string>, now: number): string[] {
  return Object.entries(fields)
    .filter(([, expiresAt]) => Number(expiresAt) + DEAD_FIELD_GRACE_MS < now)
    .map(([field]) => field);
}
