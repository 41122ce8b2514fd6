/**
 * Every frame the chat's live socket (`/ws`) sends is what the contract says: it passes the
 * exported TypeBox schema of its type (src/realtime/frames.ts, compiled with typebox/compile) and
 * the documented `ServerFrame` of the served OpenAPI document (GET /docs/json). Two users on a real
 * socket to an in-process server go through every frame type, errors included.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Compile } from 'typebox/compile';
import { ServerFrameSchema, serverFrames } from '../../src/realtime/frames.ts';
import { startApp, type TestServer } from '../support/app.ts';
import { cookieHeaders, listen, LiveSocket, signedIn, type Frame } from '../support/live.ts';

describe('the frames /ws sends', () => {
  let apps: Awaited<ReturnType<typeof startApp>>;
  let server: TestServer;
  let url: string;
  const sockets: LiveSocket[] = [];

  before(async () => {
    apps = await startApp({ store: 'memory' });
    server = apps.server;
    url = `${await listen(server)}/ws`;
  });
  after(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await apps?.close();
  });

  const open = async (browser: Parameters<typeof cookieHeaders>[0]) => {
    const socket = await LiveSocket.open(url, cookieHeaders(browser));
    sockets.push(socket);
    return socket;
  };

  /** Every frame type, from two users in one room: a sender and a reader. */
  async function everyFrame(): Promise<Frame[]> {
    const alice = await signedIn(server, 'frames');
    const bob = await signedIn(server, 'frames');
    const created = await alice.browser.api.POST('/api/chat/rooms', { body: { name: `frames-${randomUUID()}` } });
    assert.equal(created.response.status, 201);
    const room = created.data!.room.id;
    const a = await open(alice.browser);
    const b = await open(bob.browser);
    await a.next((f) => f.type === 'unread', 'unread at connect');
    assert.equal((await a.subscribe(room)).type, 'subscribed');
    assert.equal((await b.subscribe(room, 0)).type, 'subscribed');
    await a.next((f) => f.type === 'presence' && f.online.length === 2, 'both online');
    const clientMsgId = randomUUID();
    a.send({ type: 'send', room, text: 'Pizza at noon?', clientMsgId });
    await a.next((f) => f.type === 'ack' && f.clientMsgId === clientMsgId, 'the ack');
    await b.next((f) => f.type === 'message' && f.room === room, 'the message');
    b.send({ type: 'typing', room });
    await a.next((f) => f.type === 'typing' && f.users.length === 1, 'typing');
    b.send({ type: 'read', room, seq: 1 });
    await b.next((f) => f.type === 'unread' && f.rooms[room] === 0, 'unread after reading');
    a.send({ type: 'unsubscribe', room });
    await a.next((f) => f.type === 'unsubscribed', 'unsubscribed');
    a.send({ type: 'ping' });
    await a.next((f) => f.type === 'pong', 'pong');
    a.send({ type: 'nope' });
    await a.next((f) => f.type === 'error' && f.code === 'invalid_input', 'a bad frame refused');
    a.send({ type: 'send', room: randomUUID(), text: 'anyone?', clientMsgId: randomUUID() });
    await a.next((f) => f.type === 'error' && f.room !== undefined && f.clientMsgId !== undefined, 'no such room');
    return [...a.frames, ...b.frames];
  }

  it('sends only frames that fit the exported schemas and the documented ServerFrame, of every type', async () => {
    const frames = await everyFrame();
    assert.deepEqual(
      [...new Set(frames.map((f) => f.type as string))].sort(),
      Object.keys(serverFrames).sort(),
      'every server frame type was seen',
    );

    const exported = Compile(ServerFrameSchema);
    const byType = new Map(Object.entries(serverFrames).map(([type, schema]) => [type, Compile(schema)]));

    const doc = (await server.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
    (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
    ajv.addSchema(doc, 'openapi.json');
    const documented = ajv.compile({ $ref: 'openapi.json#/components/schemas/ServerFrame' });

    for (const frame of frames) {
      const what = JSON.stringify(frame);
      const own = byType.get(frame.type as string);
      assert.ok(own, `${frame.type} is a known frame type`);
      assert.ok(own.Check(frame), `${what} fits ServerFrame_${frame.type}: ${JSON.stringify(own.Errors(frame)[0])}`);
      assert.ok(exported.Check(frame), `${what} fits ServerFrameSchema`);
      assert.ok(documented(frame), `${what} fits the documented ServerFrame: ${ajv.errorsText(documented.errors)}`);
    }
  });
});
