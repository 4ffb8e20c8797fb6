import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser } from '../../helpers/browser.js';

test('the browser harness fails, naming the package, when Chromium is missing', async () => {
  await assert.rejects(launchBrowser('/nonexistent/chromium'), /Chromium not found at \/nonexistent\/chromium: install the Debian package "chromium"/);
});
