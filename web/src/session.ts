/** Who the page is for: asked once (GET /web/session), changed by sign-in, sign-up and sign-out. */
import { useEffect, useState } from 'preact/hooks';
import { api, call, onServed, type ResponseOf } from './api.ts';

export type User = ResponseOf<'get', '/api/me'>['user'];

type State = { status: 'loading' } | { status: 'ready'; user: User | null };

let state: State = { status: 'loading' };
const listeners = new Set<(s: State) => void>();

function set(next: State): void {
  state = next;
  for (const listener of listeners) listener(state);
}

export async function refreshSession(): Promise<void> {
  const { user } = await call(api.GET('/web/session'));
  set({ status: 'ready', user });
}

export const setUser = (user: User | null) => set({ status: 'ready', user });

// A 401 from the API while the page thinks someone is signed in: the session ended (a logout on
// another device, or, in stateful mode, the server that held it died). Ask again who this is.
onServed(({ status }) => {
  if (status === 401 && state.status === 'ready' && state.user) void refreshSession().catch(() => undefined);
});

export function useSession(): State {
  const [current, setCurrent] = useState(state);
  useEffect(() => {
    listeners.add(setCurrent);
    setCurrent(state);
    return () => void listeners.delete(setCurrent);
  }, []);
  return current;
}
