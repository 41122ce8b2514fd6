import { WebSocket } from 'ws';
import { ChatClient, type SocketLike } from '../realtime/client.ts';
import { FAULT_LAB_USER_AGENT, PIN_HEADER } from './signed-in-client.ts';

export interface LabChatClient {
  client: ChatClient;
  /** The server holding the socket now (from the server's hello). */
  server: string | null;
  /** True once an upgrade was refused 401: the session is gone, the client closed. */
  signedOut: boolean;
}

/**
 * The shipped ChatClient (reconnects, resubscribes with its last seq, resends what was not
 * acknowledged) over `ws`, as one signed-in user: its cookie and User-Agent on every upgrade, its
 * first connection pinned to `server`, the next ones wherever the balancer sends them. An upgrade
 * refused 401 (a stateful server's session died with it) closes the client: it would have to
 * sign in again.
 */
export function labChatClient(baseUrl: string, cookie: string, server?: string): LabChatClient {
  let connects = 0;
  const lab: LabChatClient = {
    server: null,
    signedOut: false,
    client: new ChatClient({
      url: `${baseUrl.replace(/^http/, 'ws')}/ws`,
      open: (url) => {
        const pin = connects++ === 0 && server ? { [PIN_HEADER]: server } : {};
        const socket = new WebSocket(url, { headers: { cookie, 'user-agent': FAULT_LAB_USER_AGENT, ...pin } });
        socket.on('error', (error) => {
          if (!/Unexpected server response: 401/.test(error.message) || lab.signedOut) return;
          lab.signedOut = true;
          queueMicrotask(() => lab.client.close());
        });
        return socket as unknown as SocketLike;
      },
      minDelayMs: 50,
      maxDelayMs: 1_000,
    }),
  };
  lab.client.on('hello', (id) => (lab.server = id));
  return lab;
}
