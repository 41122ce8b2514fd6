import type pg from 'pg';
import type { UserId } from '../kernel/ids.ts';

export interface UserRow {
  id: UserId;
  username: string;
  passwordHash: string;
}

const COLUMNS = 'id, username, password_hash AS "passwordHash"';

/** Users table queries. Usernames are unique by constraint, so concurrent sign-ups cannot both win. */
export class UsersTable {
  constructor(private readonly db: pg.Pool) {}

  /** The new user, or null when the username is taken. */
  async insert(username: string, passwordHash: string): Promise<UserRow | null> {
    const result = await this.db.query<UserRow>(
      `INSERT INTO users (username, password_hash) VALUES ($1, $2)
       ON CONFLICT (username) DO NOTHING RETURNING ${COLUMNS}`,
      [username, passwordHash],
    );
    return result.rows[0] ?? null;
  }

  async byUsername(username: string): Promise<UserRow | null> {
    const result = await this.db.query<UserRow>({
      name: 'users_by_username',
      text: `SELECT ${COLUMNS} FROM users WHERE username = $1`,
      values: [username],
    });
    return result.rows[0] ?? null;
  }

  async byId(id: UserId): Promise<UserRow | null> {
    const result = await this.db.query<UserRow>({
      name: 'users_by_id',
      text: `SELECT ${COLUMNS} FROM users WHERE id = $1`,
      values: [id],
    });
    return result.rows[0] ?? null;
  }
}
