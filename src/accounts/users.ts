import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';
import * as q from './queries.ts';

export interface UserRow {
  id: UserId;
  username: string;
  passwordHash: string;
}

/** Users table queries. Usernames are unique by constraint, so concurrent sign-ups cannot both win. */
export class UsersTable {
  constructor(private readonly db: pg.Pool) {}

  /** The new user, or null when the username is taken. */
  async insert(username: string, passwordHash: string): Promise<UserRow | null> {
    const result = await this.db.query<UserRow>(q.insertUser(username, passwordHash));
    return result.rows[0] ?? null;
  }

  async byUsername(username: string): Promise<UserRow | null> {
    const result = await this.db.query<UserRow>(q.userByUsername(username));
    return result.rows[0] ?? null;
  }

  async replacePasswordHash(id: UserId, checked: string, stronger: string): Promise<void> {
    await this.db.query(q.replacePasswordHash(id, checked, stronger));
  }

  async byId(id: UserId): Promise<UserRow | null> {
    const result = await this.db.query<UserRow>(q.userById(id));
    return result.rows[0] ?? null;
  }
}
