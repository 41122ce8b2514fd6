/**
 * The chat: rooms with unread badges, the open room's messages (history over HTTP, then live over
 * the socket), who is online and who is typing, a composer, and the socket's state (connecting,
 * reconnecting). The socket is the shipped ChatClient: it reconnects with backoff, resubscribes with
 * the last seq and sends again what was not acknowledged, so nothing is lost or shown twice.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ChatClient, type ClientStatus, type Message, type SocketLike } from '../../../src/realtime/client.ts';
import { api, call, type ResponseOf } from '../api.ts';
import { useSession } from '../session.ts';
import { Empty, ErrorLine, useAction } from '../ui.tsx';
import { SignInFirst } from './account.tsx';

type Room = ResponseOf<'get', '/api/chat/rooms'>['rooms'][number];

/** Typing is announced at most this often while keys are pressed. */
const TYPING_EVERY_MS = 2_000;

function socketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

export function ChatPage() {
  const session = useSession();
  const me = session.status === 'ready' ? session.user : null;
  const [rooms, setRooms] = useState<Room[] | null>(null);
  const [active, setActive] = useState<string | null>(null);
  const [messages, setMessages] = useState<Map<string, Map<number, Message>>>(new Map());
  const [unread, setUnread] = useState<Record<string, number>>({});
  const [online, setOnline] = useState<Record<string, string[]>>({});
  const [typing, setTyping] = useState<Record<string, string[]>>({});
  const [status, setStatus] = useState<ClientStatus>('connecting');
  const [liveOn, setLiveOn] = useState<string | null>(null);
  const [frameError, setFrameError] = useState<unknown>(null);
  const { busy, error, run } = useAction();
  const lastTyping = useRef(0);
  const activeRef = useRef<string | null>(null);
  activeRef.current = active;

  const client = useMemo(
    () => (me ? new ChatClient({ url: socketUrl, open: (url) => new WebSocket(url) as unknown as SocketLike }) : null),
    [me?.id],
  );

  useEffect(() => {
    if (!client) return;
    const offs = [
      client.on('status', setStatus),
      client.on('hello', setLiveOn),
      client.on('message', (room, message) => {
        setMessages((all) => new Map(all).set(room, new Map(all.get(room)).set(message.seq, message)));
        if (room !== activeRef.current && message.author !== me?.username) {
          setUnread((u) => ({ ...u, [room]: (u[room] ?? 0) + 1 }));
        }
        if (room === activeRef.current) client.read(room, message.seq);
      }),
      client.on('unread', (rooms) => setUnread({ ...rooms, ...(activeRef.current ? { [activeRef.current]: 0 } : {}) })),
      client.on('presence', (room, users) => setOnline((o) => ({ ...o, [room]: users }))),
      client.on('typing', (room, users) =>
        setTyping((t) => ({ ...t, [room]: users.filter((u) => u !== me?.username) })),
      ),
      client.on('error', (e) => setFrameError(new Error(e.message))),
    ];
    client.connect();
    void run(async () => {
      const list = (await call(api.GET('/api/chat/rooms'))).rooms;
      setRooms(list);
      for (const room of list) client.subscribe(room.id, room.lastSeq);
      if (list[0]) setActive((a) => a ?? list[0]!.id);
    });
    return () => {
      for (const off of offs) off();
      client.close();
    };
  }, [client]);

  useEffect(() => {
    if (!active || !client) return;
    setUnread((u) => ({ ...u, [active]: 0 }));
    const room = rooms?.find((r) => r.id === active);
    void run(async () => {
      const after = Math.max(0, (room?.lastSeq ?? 0) - 100);
      const history = await call(
        api.GET('/api/chat/rooms/{id}/messages', {
          params: { path: { id: active }, query: { after: String(after), limit: '200' } },
        }),
      );
      setMessages((all) => {
        const merged = new Map(all.get(active));
        for (const m of history.messages) merged.set(m.seq, m);
        return new Map(all).set(active, merged);
      });
      const last = history.messages.at(-1);
      if (last) client.read(active, last.seq);
    });
  }, [active, rooms === null]);

  if (!me) return session.status === 'loading' ? <p aria-busy="true">Checking your session…</p> : <SignInFirst />;

  const createRoom = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const name = String(new FormData(form).get('name'));
    void run(async () => {
      const { room } = await call(api.POST('/api/chat/rooms', { body: { name } }));
      setRooms((list) => [...(list ?? []), room]);
      client?.subscribe(room.id, room.lastSeq);
      setActive(room.id);
      form.reset();
    });
  };
  const send = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const text = String(new FormData(form).get('text')).trim();
    if (!text || !active || !client) return;
    form.reset();
    setFrameError(null);
    client.send(active, text).catch((e: unknown) => setFrameError(e));
  };
  const onKey = () => {
    if (!active || !client || Date.now() - lastTyping.current < TYPING_EVERY_MS) return;
    lastTyping.current = Date.now();
    client.typing(active);
  };

  const shown = [...(messages.get(active ?? '')?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  const activeRoom = rooms?.find((r) => r.id === active);
  const typers = typing[active ?? ''] ?? [];
  return (
    <div class="chat">
      <aside class="card" aria-label="rooms">
        <h2>Rooms</h2>
        <p class={`connection ${status}`} role="status" data-testid="socket-status">
          {status === 'open'
            ? `Live on ${liveOn ?? '…'}`
            : status === 'reconnecting'
              ? 'Reconnecting…'
              : status === 'connecting'
                ? 'Connecting…'
                : 'Offline'}
        </p>
        {rooms === null ? (
          <p aria-busy="true">Loading rooms…</p>
        ) : rooms.length === 0 ? (
          <Empty>No rooms yet: create the first.</Empty>
        ) : (
          <ul class="rooms">
            {rooms.map((room) => (
              <li key={room.id}>
                <button type="button" aria-current={room.id === active} onClick={() => setActive(room.id)}>
                  {room.name}
                  {(unread[room.id] ?? 0) > 0 && (
                    <span class="badge" aria-label={`${unread[room.id]} unread`}>
                      {unread[room.id]}
                    </span>
                  )}
                </button>
              </li>
            ))}
          </ul>
        )}
        <form onSubmit={createRoom} aria-label="Create a room">
          <label for="room-name">New room</label>
          <input id="room-name" name="name" required maxLength={64} />
          <button type="submit" disabled={busy}>
            Create room
          </button>
        </form>
        <ErrorLine error={error} />
      </aside>
      <section class="card room" aria-label={activeRoom ? `room ${activeRoom.name}` : 'no room'}>
        {!activeRoom ? (
          <Empty>Pick or create a room.</Empty>
        ) : (
          <>
            <h2>{activeRoom.name}</h2>
            <p class="online" data-testid="online">
              Online: {(online[activeRoom.id] ?? []).join(', ') || 'nobody'}
            </p>
            <ol class="messages" aria-label="messages" aria-live="polite">
              {shown.length === 0 ? (
                <li class="empty">No messages yet.</li>
              ) : (
                shown.map((m) => (
                  <li key={m.seq} data-seq={m.seq}>
                    <b>{m.author}</b> <span>{m.text}</span>{' '}
                    <time dateTime={m.createdAt}>{new Date(m.createdAt).toLocaleTimeString()}</time>
                  </li>
                ))
              )}
            </ol>
            <p class="typing" aria-live="polite">
              {typers.length > 0 ? `${typers.join(', ')} ${typers.length === 1 ? 'is' : 'are'} typing…` : ' '}
            </p>
            <form onSubmit={send} aria-label="Send a message" class="composer">
              <label for="message-text">Message</label>
              <input id="message-text" name="text" required maxLength={4000} autoComplete="off" onInput={onKey} />
              <button type="submit">Send</button>
            </form>
            <ErrorLine error={frameError} />
          </>
        )}
      </section>
    </div>
  );
}
