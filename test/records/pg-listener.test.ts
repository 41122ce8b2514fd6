/**
 * The one LISTEN connection of a process survives a database blip: while PostgreSQL cannot be
 * reached it keeps trying (with backoff, not once), then listens again on every channel and tells
 * subscribers they may have missed notifications. The blip is made at the wire: a TCP proxy in
 * front of the real PostgreSQL that cuts every connection and refuses new ones until told.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PgListener } from '../../src/records/pg-listener.ts';
import { freshDatabase } from '../support/postgres.ts';
import { startProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';

describe('the shared PostgreSQL listener', () => {
  let databaseUrl: string;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  const warnings: string[] = [];
  const log = { warn: (_fields: object, message: string) => void warnings.push(message) };
  before(async () => {
    databaseUrl = await freshDatabase();
    proxy = await startProxy(new URL(databaseUrl));
  });
  after(() => proxy.close());

  const notify = async (channel: string, payload: string) => {
    const client = new pg.Client(databaseUrl);
    await client.connect();
    try {
      await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
    } finally {
      await client.end();
    }
  };

  it('delivers NOTIFYs, and again after the database was unreachable for a while', async () => {
    const listener = await PgListener.connect(proxy.url, log);
    try {
      const received: string[] = [];
      let reconnects = 0;
      await listener.listen(
        'keys_test',
        (payload) => received.push(payload),
        () => reconnects++,
      );
      await notify('keys_test', 'before');
      await waitFor(() => received.includes('before'), { what: 'the first notification' });

      proxy.down();
      await waitFor(() => !listener.connected, { what: 'the listener to see the cut' });
      // More than one reconnect fails while it is down: the listener must keep trying.
      await waitFor(() => proxy.refused >= 3, { timeoutMs: 10_000, what: 'several refused reconnects' });
      await notify('keys_test', 'missed while down');
      proxy.up();

      await waitFor(() => listener.connected && reconnects === 1, { timeoutMs: 10_000, what: 'the reconnect' });
      await notify('keys_test', 'after');
      await waitFor(() => received.includes('after'), { what: 'a notification after the reconnect' });
      assert.ok(!received.includes('missed while down'), 'a NOTIFY while down is lost: hence onReconnect');
      assert.ok(
        warnings.some((w) => /reconnecting/.test(w)),
        'the loss was logged',
      );
    } finally {
      await listener.close();
    }
  });
});
