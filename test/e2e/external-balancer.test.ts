/**
 * `npm start -- --balancer haproxy|nginx`: the real binary in front of the app servers, owned by
 * the supervisor, with a config it generates and reloads as servers come and go. /_cluster works
 * the same as with the embedded balancer (the control routes are forwarded to the supervisor).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { Browser, servedBy as serverOf } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

for (const balancer of ['haproxy', 'nginx'] as const) {
  describe(`npm start -- --balancer ${balancer}`, () => {
    let cluster: Cluster;
    before(async () => {
      cluster = await startCluster({ balancer });
    });
    after(() => cluster.stop());

    const servedBy = async (count: number, browser = new Browser(cluster.url)) => {
      const answers = [];
      for (let i = 0; i < count; i++) {
        const answer = await browser.api.GET('/api/me');
        answers.push({ status: answer.response.status, servedBy: serverOf(answer) });
      }
      return answers;
    };

    /** A new browser with a session of a new user; `registered` is the sign-up's answer. */
    const signedUp = async (username: string) => {
      const browser = new Browser(cluster.url);
      const registered = await browser.api.POST('/api/auth/register', {
        body: { username, password: 'correct horse battery' },
      });
      assert.equal(registered.response.status, 201);
      return { browser, registered };
    };

    it('spreads requests over every server, and one session is known to all', async () => {
      const { browser } = await signedUp(`ext_${balancer}`);
      const answers = await servedBy(12, browser);
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(12).fill(200),
      );
      assert.deepEqual(new Set(answers.map((a) => a.servedBy)), new Set(['s1', 's2', 's3']));
    });

    it('/_cluster answers through it; a kill takes the server out, a start brings it back', async () => {
      const view = await cluster.view();
      assert.deepEqual(
        view.servers.map((s) => [s.id, s.status]),
        [
          ['s1', 'up'],
          ['s2', 'up'],
          ['s3', 'up'],
        ],
      );
      await cluster.kill('s2');
      const afterKill = await servedBy(12);
      assert.ok(
        afterKill.every((a) => a.status === 401 && a.servedBy !== 's2'),
        `after the kill: ${afterKill.map((a) => `${a.status} ${a.servedBy}`).join(', ')}`,
      );
      await cluster.start('s2');
      await waitFor(async () => (await servedBy(6)).some((a) => a.servedBy === 's2'), {
        what: 's2 back in the rotation',
        timeoutMs: 15_000,
      });
    });

    it('the control routes keep their locks: a cross-site POST is refused, another host needs the token', async () => {
      const crossSite = await fetch(`${cluster.url}/_cluster/servers/s1/kill`, {
        method: 'POST',
        headers: { origin: 'https://evil.example' },
      });
      assert.equal(crossSite.status, 403);
      // fetch will not send another Host; undici's request does.
      const view = async (headers: Record<string, string>) => {
        const response = await request(`${cluster.url}/_cluster`, { headers });
        await response.body.dump();
        return response.statusCode;
      };
      assert.equal(await view({}), 200, 'loopback, naming this balancer');
      assert.equal(await view({ host: 'rebound.example' }), 403, 'a name that merely resolves here');
      assert.equal(await view({ host: 'rebound.example', 'x-forwarded-for': '127.0.0.1' }), 403);
      assert.equal(await view({ host: 'rebound.example', authorization: `Bearer ${cluster.adminToken}` }), 200);
    });

    it(`an added server joins the rotation, a removed one leaves it: ${balancer} follows`, async () => {
      const added = await cluster.controlApi.POST('/_cluster/servers');
      assert.equal(added.response.status, 201);
      const id = added.data!.server.id;
      await cluster.waitUntilUp(id);
      // Only a config that names the new server sends it anything.
      await waitFor(async () => (await servedBy(8)).some((a) => a.servedBy === id), {
        what: `${id} in the rotation`,
        timeoutMs: 15_000,
      });
      const removed = await cluster.controlApi.DELETE('/_cluster/servers/{id}', { params: { path: { id } } });
      assert.equal(removed.response.status, 202);
      await waitFor(async () => !(await cluster.view()).servers.some((s) => s.id === id), {
        what: `${id} removed`,
        timeoutMs: 30_000,
      });
      const answers = await servedBy(12);
      assert.ok(
        answers.every((a) => a.status === 401 && a.servedBy !== id),
        `after the removal: ${answers.map((a) => `${a.status} ${a.servedBy}`).join(', ')}`,
      );
    });

    it(`a switch to stateful mode reloads ${balancer} with its sticky cookie`, async () => {
      const since = Date.now();
      const switched = await cluster.controlApi.POST('/_cluster/mode', { body: { mode: 'stateful' } });
      assert.equal(switched.response.status, 202);
      await waitFor(
        async () => {
          const view = await cluster.view();
          return (
            view.mode === 'stateful' &&
            view.servers.every((s) => s.status === 'up' && Date.parse(s.startedAt ?? '') > since)
          );
        },
        { what: 'every server restarted stateful', timeoutMs: 60_000 },
      );
      // The supervisor sees a server up by its own check; the balancer routes to it after its own
      // next check (up to half a second later; README, Known limits).
      for (const id of ['s1', 's2', 's3']) {
        await waitFor(
          async () => (await fetch(`${cluster.url}/readyz`, { headers: { 'x-statewise-server': id } })).status === 200,
          { what: `${balancer} routes to ${id} again`, timeoutMs: 10_000 },
        );
      }
      const { browser, registered } = await signedUp(`sticky_${balancer}`);
      const answers = await servedBy(12, browser);
      assert.deepEqual(
        new Set(answers.map((a) => `${a.status} ${a.servedBy}`)),
        new Set([`200 ${serverOf(registered)}`]),
        'every request back on the server that holds the session in its memory',
      );
    });
  });
}
