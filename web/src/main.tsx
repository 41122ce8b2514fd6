/**
 * The web app: one page, five views chosen by the URL's hash (#/account, #/shop, #/bank, #/chat,
 * #/cluster). Every API answer names its server in the header's trail, so a person sees requests
 * move between servers. Runs under the page's CSP: no inline script or style, same origin only.
 * When the first view has what it needs, <html data-state> is "ready" (tests and tools wait for it).
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onServed, type Served } from './api.ts';
import { AccountPage } from './pages/account.tsx';
import { BankPage } from './pages/bank.tsx';
import { ChatPage } from './pages/chat.tsx';
import { ClusterPage } from './pages/cluster.tsx';
import { ShopPage } from './pages/shop.tsx';
import { refreshSession, useSession } from './session.ts';

const VIEWS = {
  account: { title: 'Account', page: AccountPage },
  shop: { title: 'Pizza shop', page: ShopPage },
  bank: { title: 'ATM', page: BankPage },
  chat: { title: 'Chat', page: ChatPage },
  cluster: { title: 'Cluster', page: ClusterPage },
} as const;
type View = keyof typeof VIEWS;

const viewOf = (hash: string): View => {
  const name = hash.replace(/^#\/?/, '');
  return name in VIEWS ? (name as View) : 'shop';
};

function useHashView(): View {
  const [view, setView] = useState(viewOf(location.hash));
  useEffect(() => {
    const onChange = () => setView(viewOf(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return view;
}

/** The last few answers and their servers. */
function ServedTrail() {
  const [trail, setTrail] = useState<Served[]>([]);
  useEffect(() => onServed((s) => setTrail((t) => [s, ...t].slice(0, 6))), []);
  const last = trail[0];
  return (
    <div class="trail" aria-label="which server answered">
      <span>
        Last answer from <b data-testid="last-served-by">{last?.servedBy ?? '–'}</b>
      </span>
      <ol>
        {trail.map((s, i) => (
          <li key={`${s.at}-${i}`} class={s.status >= 400 ? 'failed' : ''}>
            {s.method} {s.path.replace(/\?.*$/, '')} → {s.status} by {s.servedBy ?? 'balancer'}
          </li>
        ))}
      </ol>
    </div>
  );
}

function App() {
  const view = useHashView();
  const session = useSession();
  const Page = VIEWS[view].page;
  useEffect(() => {
    document.title = `${VIEWS[view].title} · statewise`;
  }, [view]);
  useEffect(() => {
    if (session.status === 'ready') document.documentElement.dataset.state = 'ready';
  }, [session.status]);
  return (
    <>
      <header>
        <a class="brand" href="#/shop">
          statewise
        </a>
        <nav aria-label="main">
          {(Object.keys(VIEWS) as View[]).map((name) => (
            <a key={name} href={`#/${name}`} aria-current={name === view ? 'page' : undefined}>
              {VIEWS[name].title}
            </a>
          ))}
        </nav>
        <span class="who">
          {session.status === 'ready' && session.user ? (
            <>
              Signed in as <b>{session.user.username}</b>
            </>
          ) : (
            <a href="#/account">Sign in</a>
          )}
        </span>
      </header>
      <ServedTrail />
      <main>
        <h1>{VIEWS[view].title}</h1>
        <Page />
      </main>
    </>
  );
}

refreshSession().catch(() => {
  document.documentElement.dataset.state = 'failed';
});
const root = document.getElementById('app')!;
root.textContent = ''; // The "Loading…" placeholder: Preact renders into an empty container.
render(<App />, root);
