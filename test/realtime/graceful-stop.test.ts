/**
 * A graceful stop of a server with live sockets: every socket is told to reconnect elsewhere (1001)
 * and the stop does not wait on a client that has stopped reading (its close handshake never
 * comes back): it is cut after SHUTDOWN_CLOSE_TIMEOUT_MS, not the 5 s an ordinary close waits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SHUTDOWN_CLOSE_TIMEOUT_MS } from '../../src/realtime/connection.ts';
import { startApp, type TestServer } from '../support/app.ts';
import { cookieHeaders, listen, LiveSocket, signedIn } from '../support/live.ts';
import { waitFor } from '../support/wait.ts';

describe('graceful stop with live sockets', () => {
  let apps: Awaited<ReturnType<typeof startApp>>;
  let server: TestServer;
  before(async () => {
    apps = await startApp({ store: 'postgres', mode: 'stateless' });
    server = apps.server;
  });
  after(() => apps.close());

  it('says 1001 to every socket and does not wait long on one that stopped reading', async () => {
    const url = `${await listen(server)}/ws`;
    const { browser } = await signedIn(server, 'stopper');
    const reading = await LiveSocket.open(url, cookieHeaders(browser));
    const stalled = await LiveSocket.open(url, cookieHeaders(browser));
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(() => server.app.realtime.connections() === 2, { what: 'two sockets on the server' });

    const started = Date.now();
    await server.services.lifecycle.shutdown({ drainDelayMs: 0, graceMs: 15_000, log: () => undefined });
    const tookMs = Date.now() - started;

    await waitFor(() => reading.closed !== undefined, { what: 'the reading socket closed' });
    assert.equal(reading.closed!.code, 1001);
    assert.ok(tookMs < SHUTDOWN_CLOSE_TIMEOUT_MS + 1_500, `the stop took ${tookMs} ms`);
    stalled.ws.terminate();
  });
});
