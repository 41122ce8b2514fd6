/**
 * The redis store under Redis Sentinel, by the documented URL (redis+sentinel://h:p,h:p/name):
 * three servers sign users in and fill carts, the primary is SIGKILLed, the sentinels promote the
 * replica, and the servers go on without a restart; what was written (and replicated) before
 * survives on every server; the killed node comes back as a replica. Then the new primary hangs
 * (SIGSTOP) and wakes after the failover: the servers go on, and a write made as it wakes lands
 * on the new primary. Logouts wait for the replica (WAIT). Prints the failover times and the
 * requests that failed meanwhile; npm run bench:failover measures 5 of each kind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { SessionManager } from '../../src/accounts/session-manager.ts';
import { redisFromUrl } from '../../src/state/redis-url.ts';
import { PASSWORD, newUsername } from '../security/backends.ts';
import { startApps, statusOf, type InjectClient, type TestApps, type TestServer } from '../support/app.ts';
import { startSentinelSetup, type SentinelSetup } from '../support/redis-sentinel.ts';
import { waitFor } from '../support/wait.ts';

/** A new client of `server` with the cookies and User-Agent of `browser`: the same browser there. */
function sameBrowserOn(server: TestServer, browser: InjectClient): InjectClient {
  const client = server.client(browser.userAgent);
  for (const [name, value] of browser.cookies) client.cookies.set(name, value);
  return client;
}

/** Registers a new user with `browser`: 201. */
const register = (browser: InjectClient, username: string) =>
  statusOf(browser.api.POST('/api/auth/register', { body: { username, password: PASSWORD } }));

/** The id of the first item of the menu. */
const firstItem = async (browser: InjectClient) => (await browser.api.GET('/api/menu')).data!.items[0]!.id;

/** Adds `qty` of `itemId` to the cart of `browser`. */
const add = (browser: InjectClient, itemId: string, qty: number) =>
  browser.api.POST('/api/cart/items', { body: { itemId, qty } });

describe('redis store under Sentinel', () => {
  let sentinel: SentinelSetup;
  let apps: TestApps;
  let s1: TestServer;
  let s2: TestServer;
  let s3: TestServer;
  before(async () => {
    sentinel = await startSentinelSetup();
    apps = await startApps({ store: 'redis', servers: 3, redisUrl: sentinel.url });
    [s1, s2, s3] = apps.servers as [TestServer, TestServer, TestServer];
  });
  after(async () => {
    try {
      await apps?.close();
    } finally {
      await sentinel?.stop();
    }
  });

  it('a client that ioredis ends in the middle of a failover connects again (redis/ioredis#1683)', async () => {
    const client = redisFromUrl(sentinel.url) as Redis;
    try {
      assert.equal(await client.ping(), 'PONG');
      // What the failover detector does when +switch-master arrives while the client is asking a
      // sentinel for the primary: it closes the connector under that attempt (internal fields).
      const connector = (client as unknown as { connector: { disconnect(): void } }).connector;
      client.once('connecting', () => setImmediate(() => connector.disconnect()));
      const ended = new Promise((resolve) => client.once('end', resolve));
      client.disconnect(true);
      await ended;
      await waitFor(async () => client.status === 'ready', { what: 'the client to connect again' });
      assert.equal(await client.ping(), 'PONG');
    } finally {
      client.disconnect();
    }
  });

  // Before the kill below: this one needs the replica to be a replica.
  it('a logout is acknowledged only once the replica has it (WAIT): no failover can undo it', async () => {
    const browser = s1.client();
    assert.equal(await register(browser, newUsername('wait')), 201);
    const key = `sw:s:{${SessionManager.idOf(browser.cookies.get('sid')!)}}`;
    const replica = new Redis({ port: sentinel.replicaPort, host: '127.0.0.1' });
    await waitFor(async () => (await replica.exists(key)) === 1, { what: 'the session on the replica' });
    // The replica stops reading for 300 ms (less than the WAIT's 500 ms bound): a logout that did
    // not wait for it would return at once.
    const asleep = replica.call('DEBUG', 'SLEEP', '0.3');
    const started = Date.now();
    assert.equal(await statusOf(browser.api.POST('/api/auth/logout')), 204);
    const tookMs = Date.now() - started;
    await asleep;
    assert.ok(tookMs >= 200, `the logout waited for the replica (${tookMs} ms)`);
    assert.equal(await replica.exists(key), 0, 'the replica has the logout');

    replica.disconnect();
  });

  it('goes on after the primary is SIGKILLed, with sessions and carts kept', async () => {
    // A user signed up on each server, whose cart line goes in through the next one.
    const servers = [s1, s2, s3];
    const users: Array<{ browser: InjectClient; username: string; item: string }> = [];
    for (const [i, server] of servers.entries()) {
      const browser = server.client();
      const username = newUsername(`sentinel${i}`);
      assert.equal(await register(browser, username), 201);
      const item = await firstItem(browser);
      assert.equal(await statusOf(add(sameBrowserOn(servers[(i + 1) % 3]!, browser), item, 2)), 200);
      users.push({ browser, username, item });
    }
    const { browser, username, item } = users[0]!;
    // What a logout or a revocation would ask for: the write is on the replica before we go on.
    const primary = new Redis({ port: sentinel.primaryPort, host: '127.0.0.1' });
    assert.equal(await primary.call('WAIT', '1', '2000'), 1, 'replicated to one replica');
    primary.disconnect();

    const killedAt = Date.now();
    sentinel.primary.kill('SIGKILL');
    let failed = 0;
    // s3 never saw this session (made on s1, its cart filled through s2): it must read it from the
    // new primary, not from its near cache.
    const back = await waitFor(
      async () => {
        const me = await sameBrowserOn(s3, browser).api.GET('/api/me');
        if (me.response.status !== 200) failed++;
        return me.response.status === 200 ? me : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the session to be served again' },
    );
    const failoverMs = Date.now() - killedAt;
    console.log(
      `failover: served again ${failoverMs} ms after SIGKILL of the primary; ${failed} requests failed meanwhile`,
    );
    assert.equal(back.data?.user.username, username, 'the session survived');
    await waitFor(async () => (await sentinel.currentPrimaryPort()) !== sentinel.primaryPort, {
      what: 'every sentinel to name the promoted replica',
    });
    // Each server's client finds the new primary on its own, some a moment after the others; then
    // every server serves every user's session and cart.
    for (const server of servers) {
      for (const user of users) {
        const on = sameBrowserOn(server, user.browser);
        const cart = await waitFor(
          async () => {
            const r = await on.api.GET('/api/cart');
            return r.response.status === 200 ? r : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 100, what: `${server.id} to serve ${user.username}'s cart again` },
        );
        assert.equal(cart.data?.items[0]?.qty, 2, `${user.username}'s cart survived (${server.id})`);
        assert.equal((await on.api.GET('/api/me')).data?.user.username, user.username);
      }
    }
    assert.equal((await add(browser, item, 1)).data?.items[0]?.qty, 3, 'writes go on');

    // The killed node comes back as a replica of the new primary: restarted empty without
    // --replicaof it would be a primary of nothing, which a later failover could promote.
    const rejoined = await sentinel.restartAsReplica(sentinel.primaryPort);
    await waitFor(async () => /master_link_status:up/.test(String(await rejoined.info('replication'))), {
      what: 'the old primary to sync from the new one',
    });
    const sessionKey = `sw:s:{${SessionManager.idOf(browser.cookies.get('sid')!)}}`;
    await waitFor(async () => (await rejoined.exists(sessionKey)) === 1, { what: 'the session on the rejoined node' });
    assert.match(String(await rejoined.info('replication')), /role:slave/);
    rejoined.disconnect();
  });

  // After the failover: the rejoined node is the replica now.
  it('a burst of logouts while the replica is away costs one WAIT bound, not one each', async () => {
    const replica = new Redis({ port: sentinel.primaryPort, host: '127.0.0.1' });
    await waitFor(async () => /master_link_status:up/.test(String(await replica.info('replication'))), {
      what: 'the rejoined replica in sync',
    });
    // On s2 (s1's waiting is paused by the test after this one, which runs later).
    const browsers = Array.from({ length: 20 }, () => s2.client());
    for (const b of browsers) {
      assert.equal(await register(b, newUsername('burst')), 201);
    }
    const away = replica.call('DEBUG', 'SLEEP', '3');
    const started = Date.now();
    const answers = await Promise.all(browsers.map((b) => statusOf(b.api.POST('/api/auth/logout'))));
    const tookMs = Date.now() - started;
    await away;
    assert.deepEqual(new Set(answers), new Set([204]));
    // One WAIT per logout held the shared connection 500 ms each, in turn: 3 s until the replica woke.
    assert.ok(tookMs < 1_500, `20 logouts took ${tookMs} ms`);
    replica.disconnect();
  });

  it('stops waiting for a while once a wait came back short (WAIT holds the connection every request shares)', async () => {
    const replica = new Redis({ port: sentinel.primaryPort, host: '127.0.0.1' });
    await waitFor(async () => /master_link_status:up/.test(String(await replica.info('replication'))), {
      what: 'the rejoined replica in sync',
    });
    // A replica that stays away: the first logout waits the whole bound (500 ms), and the next
    // ones do not, since WAIT holds the connection every request shares.
    const [one, two] = [s1.client(), s1.client()];
    for (const b of [one, two]) {
      assert.equal(await register(b, newUsername('away')), 201);
    }
    // WAITs the primary ran: a count, not a time, so a busy machine cannot make it lie.
    const primary = new Redis({ port: await sentinel.currentPrimaryPort(), host: '127.0.0.1' });
    const waits = async () =>
      Number(/cmdstat_wait:calls=(\d+)/.exec(String(await primary.info('commandstats')))?.[1] ?? 0);
    const before = await waits();
    const away = replica.call('DEBUG', 'SLEEP', '1.5');
    const first = Date.now();
    assert.equal(await statusOf(one.api.POST('/api/auth/logout')), 204);
    const firstMs = Date.now() - first;
    const afterFirst = await waits();
    assert.equal(await statusOf(two.api.POST('/api/auth/logout')), 204);
    const afterSecond = await waits();
    await away;
    assert.ok(firstMs >= 400, `the first logout waited for the bound (${firstMs} ms)`);
    assert.equal(afterFirst - before, 1, 'the first logout sent one WAIT');
    assert.equal(afterSecond - afterFirst, 0, 'the next one sent none: it did not wait again');
    primary.disconnect();
    replica.disconnect();
  });

  // Last: the promoted replica hangs (SIGSTOP), the rejoined node is promoted, then the hung one wakes.
  it('goes on after the primary hangs, and writes nothing to it once it wakes (it is a replica by then)', async () => {
    const hungPort = await sentinel.currentPrimaryPort();
    const otherPort = hungPort === sentinel.primaryPort ? sentinel.replicaPort : sentinel.primaryPort;
    const browser = s1.client();
    assert.equal(await register(browser, newUsername('hang')), 201);
    const item = await firstItem(browser);
    assert.equal(await statusOf(add(browser, item, 2)), 200);
    const primary = new Redis({ port: hungPort, host: '127.0.0.1' });
    assert.equal(await primary.call('WAIT', '1', '2000'), 1, 'replicated to one replica');
    primary.disconnect();

    const hung = sentinel.processOn(hungPort);
    const hungAt = Date.now();
    hung.kill('SIGSTOP');
    try {
      await waitFor(async () => (await sentinel.currentPrimaryPort()) === otherPort, {
        timeoutMs: 30_000,
        what: 'the sentinels to promote the other node',
      });
      // Every server serves again without a restart: their clients left the hung primary when the
      // sentinels announced the new one (a hung connection never closes by itself).
      for (const server of [s1, s2, s3]) {
        await waitFor(
          async () => {
            const cart = await sameBrowserOn(server, browser).api.GET('/api/cart');
            return cart.response.status === 200 && cart.data?.items[0]?.qty === 2;
          },
          { timeoutMs: 30_000, intervalMs: 100, what: `${server.id} to serve the cart again` },
        );
      }
      console.log(`hung primary: every server served again ${Date.now() - hungAt} ms after SIGSTOP`);
    } finally {
      hung.kill('SIGCONT');
    }
    // Written right as the old primary wakes: it must land on the new primary, not the woken one
    // (which the sentinels turn into a replica, throwing away whatever it took meanwhile).
    assert.equal((await add(browser, item, 1)).data?.items[0]?.qty, 3);
    const woken = new Redis({ port: hungPort, host: '127.0.0.1', retryStrategy: () => 50 });
    await waitFor(async () => /role:slave[\s\S]*master_link_status:up/.test(String(await woken.info('replication'))), {
      timeoutMs: 30_000,
      what: 'the woken node to be a replica in sync',
    });
    woken.disconnect();
    for (const server of [s1, s2, s3]) {
      const cart = await sameBrowserOn(server, browser).api.GET('/api/cart');
      assert.equal(cart.data?.items[0]?.qty, 3, `the write after the wake-up is kept (${server.id})`);
    }
  });
});
