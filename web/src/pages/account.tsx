/** Sign up, sign in, and for a signed-in user: their sessions, revoke one, log out (everywhere). */
import { useEffect, useState } from 'preact/hooks';
import { PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN } from '../../../src/accounts/account-rules.ts';
import { api, call, type ResponseOf } from '../api.ts';
import { setUser, useSession } from '../session.ts';
import { Empty, ErrorLine, useAction } from '../ui.tsx';

type SessionRow = ResponseOf<'get', '/api/auth/sessions'>['sessions'][number];

function CredentialsForm({ kind }: { kind: 'register' | 'login' }) {
  const { busy, error, run } = useAction();
  const title = kind === 'register' ? 'Sign up' : 'Sign in';
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    void run(async () => {
      const body = { username: String(form.get('username') ?? ''), password: String(form.get('password') ?? '') };
      const { user } = await call(
        kind === 'register' ? api.POST('/api/auth/register', { body }) : api.POST('/api/auth/login', { body }),
      );
      setUser(user);
    });
  };
  const id = (name: string) => `${kind}-${name}`;
  return (
    <form class="card" onSubmit={onSubmit} aria-label={title}>
      <h2>{title}</h2>
      <label for={id('username')}>Username</label>
      <input
        id={id('username')}
        name="username"
        autoComplete="username"
        required
        {...(kind === 'register'
          ? { pattern: USERNAME_PATTERN.slice(1, -1), title: '3 to 32 characters: a-z, 0-9, _ and -' }
          : { maxLength: 64 })}
      />
      <label for={id('password')}>Password</label>
      <input
        id={id('password')}
        name="password"
        type="password"
        autoComplete={kind === 'register' ? 'new-password' : 'current-password'}
        required
        minLength={kind === 'register' ? PASSWORD_MIN : 1}
        maxLength={PASSWORD_MAX}
      />
      {kind === 'register' && (
        <p class="hint">At least {PASSWORD_MIN} characters, not a common password, not containing your username.</p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? `${title}…` : title}
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

function Sessions() {
  const [sessions, setSessions] = useState<SessionRow[] | null>(null);
  const { busy, error, run } = useAction();
  const load = () => run(async () => setSessions((await call(api.GET('/api/auth/sessions'))).sessions));
  useEffect(() => void load(), []);
  const revoke = (id: string) =>
    run(async () => {
      await call(api.DELETE('/api/auth/sessions/{id}', { params: { path: { id } } }));
      await load();
    });
  const logout = (everywhere: boolean) =>
    run(async () => {
      await call(everywhere ? api.POST('/api/auth/logout-all') : api.POST('/api/auth/logout'));
      setUser(null);
    });
  return (
    <section class="card" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Your sessions</h2>
      {sessions === null ? (
        <p aria-busy="true">Loading your sessions…</p>
      ) : sessions.length === 0 ? (
        <Empty>No sessions.</Empty>
      ) : (
        <ul class="rows">
          {sessions.map((s) => (
            <li key={s.id}>
              <span>
                {s.current ? <b>This browser</b> : s.userAgent.slice(0, 60) || 'unknown client'}
                <small> since {new Date(s.createdAt).toLocaleString()}</small>
              </span>
              {!s.current && (
                <button type="button" disabled={busy} onClick={() => void revoke(s.id)}>
                  Revoke session
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => void logout(false)}>
          Log out
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => void logout(true)}>
          Log out everywhere
        </button>
      </div>
      <ErrorLine error={error} />
    </section>
  );
}

export function AccountPage() {
  const session = useSession();
  if (session.status === 'loading') return <p aria-busy="true">Checking your session…</p>;
  if (!session.user) {
    return (
      <div class="grid">
        <CredentialsForm kind="register" />
        <CredentialsForm kind="login" />
      </div>
    );
  }
  return (
    <div class="grid">
      <section class="card">
        <h2>Signed in</h2>
        <p>
          You are <b data-testid="username">{session.user.username}</b>.
        </p>
      </section>
      <Sessions />
    </div>
  );
}

/** Shown by pages that need a user when there is none. */
export function SignInFirst() {
  return (
    <p class="empty">
      Please <a href="#/account">sign in or sign up</a> first.
    </p>
  );
}
