/**
 * Debian's Chromium for UI tests, through playwright-core (never a browser download). Needs
 * /usr/bin/chromium (`apt-get install chromium`, as .ci/run does) or STATEWISE_CHROMIUM.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = process.env.STATEWISE_CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium is missing at ${CHROMIUM}: install it (apt-get install -y chromium, as .ci/run does) ` +
      'or set STATEWISE_CHROMIUM to its path',
  );
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
