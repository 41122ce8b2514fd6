/**
 * One server under the supervisor, with a stand-in process (fixtures/tiny-server.mjs): it keeps its
 * port across restarts, moves to a free one only when that port is taken, and stays down when it
 * is killed or stopped while starting (it used to come back by itself, on another port).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import { EXIT_PORT_TAKEN } from '../../src/kernel/exit-codes.ts';
import { ChildExitedError } from '../../src/supervisor/child-process.ts';
import { ManagedServer } from '../../src/supervisor/managed-server.ts';
import { waitFor } from '../support/wait.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/tiny-server.mjs', import.meta.url));

describe('ManagedServer', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function managed(env: { hold: boolean }) {
    const server = new ManagedServer('s1', FIXTURE, () => ({ SW_HOLD: env.hold ? '1' : '0' }), {
      onChange: () => {},
      onOutput: () => {},
    });
    cleanup.push(() => server.kill());
    return server;
  }

  it('keeps its port across a restart, and moves to a free one only when that port is taken', async () => {
    const server = managed({ hold: false });
    await server.start();
    const home = server.homeAddress;
    assert.match(home ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(await server.sessionsInMemoryNow(), 2, 'it says what it holds, fresh');
    await server.kill();
    await server.start();
    assert.equal(server.homeAddress, home, 'the same port again');

    await server.kill();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(Number(home!.split(':')[1]), '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => squatter.close(resolve)));
    await server.start();
    assert.equal(server.status, 'up');
    assert.notEqual(server.homeAddress, home, 'its port was taken: another one');
  });

  for (const action of ['kill', 'stop'] as const) {
    it(`stays down when it is ${action === 'kill' ? 'killed' : 'stopped'} while starting`, async () => {
      const env = { hold: false };
      const server = managed(env);
      await server.start();
      await server.kill();
      env.hold = true; // the next start never reaches "listening"
      const starting = server.start();
      assert.equal(server.status, 'starting');
      await waitFor(() => server.view().pid !== null, { what: 'the process to run' });
      await server[action]();
      const error = await starting.then(
        () => assert.fail('a start that was ended must not succeed'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof ChildExitedError, String(error));
      assert.notEqual(error.exitCode, EXIT_PORT_TAKEN);
      assert.equal(server.status, 'down');
      assert.equal(server.view().pid, null, 'no process launched again');
    });
  }
});
