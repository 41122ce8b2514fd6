/**
 * The chat page in two real browsers whose sockets sit on different servers: each sees the other's
 * messages, typing and presence; the server of one is SIGKILLed and the conversation goes on with
 * no gap and no repeat (the page's ChatClient reconnects elsewhere and resumes by seq).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';

const TIMEOUT_MS = 15_000;

describe('the chat page across servers and a kill', () => {
  let cluster: Cluster;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  before(async () => {
    [cluster, browser] = await Promise.all([
      startCluster({ servers: 3, env: { SW_LOGIN_IP_LIMIT: '100000' } }),
      launchChromium(),
    ]);
  });
  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await cluster?.stop();
  });

  async function person(username: string): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    // raw: through the browser context, so that its pages have the session cookie
    const registered = await context.request.post(`${cluster.url}/api/auth/register`, {
      data: { username, password: 'a long browser password' },
    });
    assert.equal(registered.status(), 201);
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    return page;
  }

  /** The server the page's socket is on, once live. */
  async function liveOn(page: Page): Promise<string> {
    const status = page.getByTestId('socket-status');
    await status.filter({ hasText: /^Live on s\d+$/ }).waitFor();
    return (await status.textContent())!.replace('Live on ', '');
  }

  const texts = (page: Page) => page.getByRole('list', { name: 'messages' }).locator('li[data-seq]');
  async function conversation(page: Page): Promise<Array<[string, string]>> {
    return texts(page).evaluateAll((items) =>
      items.map((li) => [li.getAttribute('data-seq')!, li.querySelector('span')!.textContent!] as [string, string]),
    );
  }
  async function say(page: Page, text: string): Promise<void> {
    await page.getByRole('textbox', { name: 'Message', exact: true }).fill(text);
    await page.getByRole('button', { name: 'Send' }).click();
  }

  it('messages, typing and presence cross servers; a kill leaves no gap', async () => {
    const alice = await person('alice-chat');
    const bob = await person('bob-chat');
    await alice.goto(`${cluster.url}/#/chat`);
    await alice.getByLabel('New room').fill('across');
    await alice.getByRole('button', { name: 'Create room' }).click();
    await alice.getByRole('heading', { name: 'across' }).waitFor();
    const aliceServer = await liveOn(alice);

    // Bob's socket must be on another server: the balancer deals them round robin.
    let bobServer = '';
    for (let attempt = 0; attempt < 6; attempt++) {
      await bob.goto(`${cluster.url}/#/chat`);
      await bob.reload();
      bobServer = await liveOn(bob);
      if (bobServer !== aliceServer) break;
    }
    assert.notEqual(bobServer, aliceServer, 'the two sockets are on different servers');
    await bob.getByRole('button', { name: 'across' }).click();
    await bob.getByRole('heading', { name: 'across' }).waitFor();

    const both = 'Online: alice-chat, bob-chat';
    await alice.getByTestId('online').filter({ hasText: both }).waitFor();
    await bob.getByTestId('online').filter({ hasText: both }).waitFor();

    await alice.getByRole('textbox', { name: 'Message', exact: true }).pressSequentially('hel');
    await bob.getByText('alice-chat is typing…').waitFor();

    await say(alice, 'one');
    await bob.getByText('one', { exact: true }).waitFor();
    await say(bob, 'two');
    await alice.getByText('two', { exact: true }).waitFor();

    await cluster.kill(aliceServer);
    await alice
      .getByTestId('socket-status')
      .filter({ hasText: /^Live on s\d+$/ })
      .filter({ hasNotText: aliceServer })
      .waitFor();

    await say(alice, 'three');
    await bob.getByText('three', { exact: true }).waitFor();
    await say(bob, 'four');
    const expected: Array<[string, string]> = [
      ['1', 'one'],
      ['2', 'two'],
      ['3', 'three'],
      ['4', 'four'],
    ];
    for (const page of [alice, bob]) {
      await texts(page).nth(3).waitFor();
      assert.deepEqual(await conversation(page), expected);
    }
  });
});
