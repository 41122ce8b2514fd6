/**
 * The live cluster dashboard: a card per server (status, requests per second, connections, memory)
 * with kill, stop, start and remove; add a server; mode and store, and a switch to the other mode; a chart of requests per second
 * per server; the event log. Fed by the supervisor's event stream (/_cluster/events), read with
 * fetch so the admin token can ride in a header. Off loopback the page asks for that token and keeps
 * it for this tab only (sessionStorage).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { adminHeaders, control, rememberAdminToken } from '../admin.ts';
import { failureOf, type Answer } from '../../../src/client/api-client.ts';
import type { ResponseOf } from '../api.ts';
import { ErrorLine } from '../ui.tsx';

type ClusterView = ResponseOf<'get', '/_cluster'>;
/** A `log` event's data (the document describes the stream's events in words only). */
interface LogEntry {
  at: string;
  text: string;
}

/** What a switch costs, said before it is made (every server restarts in the other mode). */
const SWITCH_WARNING = {
  stateful:
    'Every server restarts with its sessions in its own memory: signed-in visitors must sign in again (their shared sessions wait in the store for a switch back).',
  stateless:
    'Every server restarts with its sessions in the shared store: the sessions and carts the servers hold in memory are lost.',
} as const;

/** Seconds of history in the chart. */
const WINDOW = 60;

/** Reads a server-sent event stream with fetch; calls `onEvent` per event until aborted. */
async function readEvents(signal: AbortSignal, onEvent: (event: string, data: unknown) => void): Promise<number> {
  const { data, response } = await control.GET('/_cluster/events', {
    headers: adminHeaders(),
    signal,
    parseAs: 'stream',
  });
  if (!response.ok || !data) return response.status;
  const reader = data.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 0;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data !== undefined) onEvent(event, JSON.parse(data));
    }
  }
}

const mb = (bytes: number | null) => (bytes === null ? '–' : `${(bytes / 1_048_576).toFixed(0)} MB`);

/** The smallest of 1, 2, 5 times a power of ten at or above `value`: a y axis top a person reads at a glance. */
function niceCeil(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= value)!;
}

function Chart({ series }: { series: Map<string, number[]> }) {
  const top = niceCeil(Math.max(10, ...[...series.values()].flat()));
  const width = 600;
  const height = 160;
  // Lines at 0 and at the top are drawn inside the box, not half cut off by its edge.
  const inset = 4;
  const x = (i: number) => (i / (WINDOW - 1)) * width;
  const y = (v: number) => height - inset - (v / top) * (height - 2 * inset);
  const ticks = [top, top / 2, 0];
  return (
    <figure class="chart">
      <div class="plot">
        <div class="y-axis" aria-hidden="true">
          {ticks.map((t) => (
            <span key={t}>{t}</span>
          ))}
        </div>
        <svg
          viewBox={`0 0 ${width} ${height}`}
          preserveAspectRatio="none"
          role="img"
          aria-label={`requests per second per server, last minute, axis up to ${top}`}
        >
          {ticks.map((t) => (
            <line key={t} class="grid" x1={0} x2={width} y1={y(t)} y2={y(t)} vector-effect="non-scaling-stroke" />
          ))}
          {[...series].map(([id, points], n) => (
            <polyline
              key={id}
              class={`line line-${n % 6}`}
              fill="none"
              vector-effect="non-scaling-stroke"
              points={points.map((v, i) => `${x(i + WINDOW - points.length)},${y(v)}`).join(' ')}
            />
          ))}
        </svg>
      </div>
      <div class="x-axis" aria-hidden="true">
        <span>{WINDOW} s ago</span>
        <span>{WINDOW / 2} s ago</span>
        <span>now</span>
      </div>
      <figcaption>
        Requests per second per server, last minute:{' '}
        {[...series.keys()].map((id, n) => (
          <span key={id} class={`key key-${n % 6}`}>
            {id}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

export function ClusterPage() {
  const [view, setView] = useState<ClusterView | null>(null);
  const [log, setLog] = useState<LogEntry[]>([]);
  const [denied, setDenied] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  const [rates, setRates] = useState<Map<string, number[]>>(new Map());
  const previous = useRef<{ at: number; requests: Map<string, number> } | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    setDenied(false);
    readEvents(abort.signal, (event, data) => {
      if (event === 'log') setLog((entries) => [data as LogEntry, ...entries].slice(0, 100));
      if (event !== 'view') return;
      const next = data as ClusterView;
      setView(next);
      const now = Date.now();
      const prev = previous.current;
      if (prev && now - prev.at >= 900) {
        setRates((old) => {
          const updated = new Map<string, number[]>();
          for (const s of next.servers) {
            const before = prev.requests.get(s.id) ?? s.requests;
            const rate = Math.max(0, Math.round(((s.requests - before) * 1000) / (now - prev.at)));
            updated.set(s.id, [...(old.get(s.id) ?? []), rate].slice(-WINDOW));
          }
          return updated;
        });
      }
      if (!prev || now - prev.at >= 900)
        previous.current = { at: now, requests: new Map(next.servers.map((s) => [s.id, s.requests])) };
    })
      .then((status) => {
        if (status === 403 || status === 401) setDenied(true);
        else if (status !== 0) setError(new Error(`The cluster feed answered ${status}.`));
      })
      .catch((e: unknown) => {
        if (!abort.signal.aborted) setError(new Error(`The cluster feed stopped (${String(e)}); reload to retry.`));
      });
    return () => abort.abort();
  }, [generation]);

  const act = async (action: Promise<Answer<unknown>>) => {
    setError(null);
    const { error, response } = await action;
    if (response.status === 403) return setDenied(true);
    if (!response.ok) {
      const failure = failureOf(error, response).error;
      setError(
        new Error(failure.code.startsWith('http_') ? `The cluster answered ${response.status}.` : failure.message),
      );
    }
  };
  const admin = () => ({ headers: adminHeaders() });
  const server = (id: string) => ({ ...admin(), params: { path: { id } } });

  if (denied) {
    return (
      <form
        class="card"
        aria-label="Admin token"
        onSubmit={(e) => {
          e.preventDefault();
          rememberAdminToken(String(new FormData(e.currentTarget as HTMLFormElement).get('token')));
          setGeneration((g) => g + 1);
        }}
      >
        <h2>Cluster control needs the admin token</h2>
        <p>
          This page is not on the machine's loopback. Paste the token `npm start` printed; it stays in this tab only.
        </p>
        <label for="admin-token">Admin token</label>
        <input id="admin-token" name="token" type="password" required autoComplete="off" />
        <button type="submit">Use token</button>
      </form>
    );
  }
  if (!view) return <p aria-busy="true">Connecting to the cluster…</p>;

  const rps = (id: string) => rates.get(id)?.at(-1) ?? 0;
  const other = view.mode === 'stateful' ? 'stateless' : 'stateful';
  return (
    <div>
      <p class="summary">
        Mode <b data-testid="mode">{view.mode}</b>, session state in <b data-testid="store">{view.store}</b>.{' '}
        {view.mode === 'stateful'
          ? 'Each server keeps its sessions in its own memory; a sticky cookie keeps you on one.'
          : 'Any server answers any request; state lives in the shared store.'}
        <button
          type="button"
          title={SWITCH_WARNING[other]}
          onClick={() => {
            if (!confirm(`Switch to ${other}? ${SWITCH_WARNING[other]}`)) return;
            void act(control.POST('/_cluster/mode', { ...admin(), body: { mode: other } }));
          }}
        >
          Switch to {other}
        </button>
      </p>
      <div class="servers">
        {view.servers.map((s) => (
          <article key={s.id} class={`card server ${s.status}`} aria-label={`server ${s.id}`}>
            <h2>
              {s.id} <span class={`status ${s.status}`}>{s.status}</span>
            </h2>
            <dl>
              <dt>requests/s</dt>
              <dd>{rps(s.id)}</dd>
              <dt>connections</dt>
              <dd>{s.connections}</dd>
              <dt>memory</dt>
              <dd>{mb(s.rssBytes)}</dd>
              {s.sessionsInMemory !== null && (
                <>
                  <dt>sessions only here</dt>
                  <dd>{s.sessionsInMemory}</dd>
                </>
              )}
              <dt>pid</dt>
              <dd>{s.pid ?? '–'}</dd>
            </dl>
            <div class="actions">
              <button
                type="button"
                class="danger"
                disabled={s.status === 'down'}
                onClick={() => void act(control.POST('/_cluster/servers/{id}/kill', server(s.id)))}
              >
                Kill {s.id}
              </button>
              <button
                type="button"
                disabled={s.status !== 'up'}
                onClick={() => void act(control.POST('/_cluster/servers/{id}/stop', server(s.id)))}
              >
                Stop {s.id}
              </button>
              <button
                type="button"
                disabled={s.status !== 'down'}
                onClick={() => void act(control.POST('/_cluster/servers/{id}/start', server(s.id)))}
              >
                Start {s.id}
              </button>
              <button type="button" onClick={() => void act(control.DELETE('/_cluster/servers/{id}', server(s.id)))}>
                Remove {s.id}
              </button>
            </div>
          </article>
        ))}
      </div>
      <div class="actions">
        <button type="button" onClick={() => void act(control.POST('/_cluster/servers', admin()))}>
          Add a server
        </button>
        <button type="button" onClick={() => void act(control.POST('/_cluster/rolling-restart', admin()))}>
          Rolling restart
        </button>
      </div>
      <ErrorLine error={error} />
      <Chart series={rates} />
      <section class="card" aria-labelledby="log-title">
        <h2 id="log-title">Events</h2>
        <p class="hint">Newest first.</p>
        <ul class="log" aria-live="polite">
          {log.map((entry, i) => (
            <li key={`${entry.at}-${i}`}>
              <time dateTime={entry.at}>{new Date(entry.at).toLocaleTimeString()}</time> {entry.text}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
