/**
 * The ATM of the articles: one central ledger, many ATMs (servers). Pick the ATM that runs each
 * action (the pin header), then ask every ATM for the balance: they all agree.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, call, money, newIdempotencyKey, pinTo, served, type ResponseOf } from '../api.ts';
import { useServerIds } from '../cluster-servers.ts';
import { useSession } from '../session.ts';
import { Empty, ErrorLine, ServedBy, useAction } from '../ui.tsx';
import { SignInFirst } from './account.tsx';

type Transaction = ResponseOf<'get', '/api/bank/transactions'>['transactions'][number];

const toCents = (value: FormDataEntryValue | null) => Math.round(Number(value) * 100);

/** One money movement's form: an amount (and for a transfer, to whom), and its button. */
function MoneyForm(props: { kind: 'deposit' | 'withdraw' | 'transfer'; busy: boolean; onSubmit: (e: Event) => void }) {
  const title = props.kind[0]!.toUpperCase() + props.kind.slice(1);
  return (
    <form onSubmit={props.onSubmit} aria-label={title}>
      {props.kind === 'transfer' && (
        <>
          <label for="transfer-to">Transfer to (username)</label>
          <input id="transfer-to" name="to" required />
        </>
      )}
      <label for={`${props.kind}-amount`}>{title} amount</label>
      <input id={`${props.kind}-amount`} name="amount" type="number" min="0.01" step="0.01" required />
      <button type="submit" disabled={props.busy}>
        {title}
      </button>
    </form>
  );
}

export function BankPage() {
  const session = useSession();
  const ids = useServerIds();
  // Without the list of servers (not on loopback, no admin token), the one ATM is "any server".
  const atms = ids.length > 0 ? ids : [''];
  const [atm, setAtm] = useState('');
  const [balances, setBalances] = useState<Record<string, number | string>>({});
  const [history, setHistory] = useState<Transaction[]>([]);
  const [last, setLast] = useState<{ text: string; servedBy: string | null } | null>(null);
  const { busy, error, run } = useAction();
  const signedIn = session.status === 'ready' && session.user !== null;

  const loadHistory = () => call(api.GET('/api/bank/transactions')).then((r) => setHistory(r.transactions));
  const checkEveryAtm = () =>
    run(async () => {
      const entries = await Promise.all(
        atms.map(async (id) => {
          try {
            const r = await call(api.GET('/api/bank/account', { headers: pinTo(id) }));
            return [id, r.balanceCents] as const;
          } catch (e) {
            return [id, e instanceof Error ? e.message : 'unavailable'] as const;
          }
        }),
      );
      setBalances(Object.fromEntries(entries));
    });
  useEffect(() => {
    if (!signedIn) return;
    void checkEveryAtm();
    void loadHistory().catch(() => undefined);
  }, [signedIn, ids.join()]);

  if (!signedIn) return session.status === 'loading' ? <p aria-busy="true">Checking your session…</p> : <SignInFirst />;

  const move = (kind: 'deposit' | 'withdraw' | 'transfer') => (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const amountCents = toCents(data.get('amount'));
    const options = { params: { header: { 'Idempotency-Key': newIdempotencyKey() } }, headers: pinTo(atm) };
    void run(async () => {
      const r = await served(
        kind === 'transfer'
          ? api.POST('/api/bank/transfer', {
              ...options,
              body: { amountCents, toUsername: String(data.get('to') ?? '') },
            })
          : api.POST(`/api/bank/${kind}`, { ...options, body: { amountCents } }),
      );
      setLast({ text: `${kind} done; balance ${money(r.body.balanceCents)}`, servedBy: r.servedBy });
      form.reset();
      await Promise.all([checkEveryAtm(), loadHistory()]);
    });
  };

  return (
    <div class="grid">
      <section class="card" aria-labelledby="atm-title">
        <h2 id="atm-title">ATM</h2>
        <label for="atm">Use the ATM at</label>
        <select id="atm" value={atm} onChange={(e) => setAtm((e.currentTarget as HTMLSelectElement).value)}>
          <option value="">any server (the balancer picks)</option>
          {ids.map((id) => (
            <option key={id} value={id}>
              {id}
            </option>
          ))}
        </select>
        {(['deposit', 'withdraw', 'transfer'] as const).map((kind) => (
          <MoneyForm key={kind} kind={kind} busy={busy} onSubmit={move(kind)} />
        ))}
        {last && (
          <p role="status">
            {last.text} <ServedBy server={last.servedBy} />
          </p>
        )}
        <ErrorLine error={error} />
      </section>
      <section class="card" aria-labelledby="balances-title">
        <h2 id="balances-title">Balance at every ATM</h2>
        <ul class="rows" aria-label="balances">
          {atms.map((id) => (
            <li key={id} data-testid={`balance-${id || 'any'}`}>
              <span>ATM {id || '(any server)'}</span>
              <b>{typeof balances[id] === 'number' ? money(balances[id] as number) : (balances[id] ?? '…')}</b>
            </li>
          ))}
        </ul>
        <button type="button" disabled={busy} onClick={() => void checkEveryAtm()}>
          Check every ATM
        </button>
      </section>
      <section class="card" aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        {history.length === 0 ? (
          <Empty>No transactions yet.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col">Amount</th>
                <th scope="col">Balance after</th>
              </tr>
            </thead>
            <tbody>
              {history.map((t) => (
                <tr key={t.id}>
                  <td>{new Date(t.createdAt).toLocaleString()}</td>
                  <td>{t.kind}</td>
                  <td>{money(t.amountCents)}</td>
                  <td>{money(t.balanceAfterCents)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
