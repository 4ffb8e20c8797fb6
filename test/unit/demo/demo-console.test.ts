import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/clock.js';
import { loadDefaultFont } from '../../../src/demo/bitmap-font.js';
import { DemoConsole, type ConsoleListener } from '../../../src/demo/demo-console.js';
import { Keysym } from '../../../src/rfb/constants.js';

function makeConsole(name = 'ecs-demo-01', clock = new ManualClock(Date.UTC(2026, 0, 2, 3, 4, 5))) {
  return new DemoConsole({ name, width: 800, height: 480, font: loadDefaultFont(), clock });
}

function lineAt(c: DemoConsole, row: number): string {
  let s = '';
  for (let col = 0; col < c.cols; col++) s += String.fromCharCode(c.charAt(row, col));
  return s.trimEnd();
}

function screenText(c: DemoConsole): string[] {
  return Array.from({ length: c.rows }, (_, r) => lineAt(c, r));
}

function type(c: DemoConsole, text: string): void {
  for (const ch of text) {
    c.handleKey(ch.charCodeAt(0), true);
    c.handleKey(ch.charCodeAt(0), false);
  }
}

function press(c: DemoConsole, keysym: number): void {
  c.handleKey(keysym, true);
  c.handleKey(keysym, false);
}

test('boots to a login prompt with the server name and a clock on the status line', () => {
  const c = makeConsole();
  const text = screenText(c);
  assert.equal(c.cols, 133);
  assert.equal(c.rows, 30);
  assert.match(text[0] ?? '', /^\[ +0\.000000\] Linux version/);
  assert.ok(text.some((l) => /^\[  OK  \] Reached target multi-user\.target/.test(l)));
  assert.equal(lineAt(c, c.cursor.row), 'ecs-demo-01 login:');
  assert.match(text[c.rows - 1] ?? '', /^ ecs-demo-01 \| tty1 .* 2026-01-02 03:04:05 UTC$/);
  assert.ok(c.framebuffer.some((p) => p !== c.framebuffer[0]), 'the screen is not one colour');
});

test('typed keys echo at the prompt; Backspace and Tab edit; key releases do nothing', () => {
  const c = makeConsole();
  const row = c.cursor.row;
  type(c, 'hello');
  assert.equal(lineAt(c, row), 'ecs-demo-01 login: hello');
  press(c, Keysym.BackSpace);
  press(c, Keysym.BackSpace);
  assert.equal(lineAt(c, row), 'ecs-demo-01 login: hel');
  press(c, Keysym.Tab);
  type(c, 'x');
  assert.equal(lineAt(c, row), 'ecs-demo-01 login: hel  x');
  press(c, Keysym.BackSpace);
  press(c, Keysym.BackSpace);
  type(c, 'p');
  assert.equal(lineAt(c, row), 'ecs-demo-01 login: help');
  c.handleKey(0xffe1, true); // Shift_L: ignored
  assert.equal(lineAt(c, row), 'ecs-demo-01 login: help');
});

test('Enter asks for a password (not echoed), then says Login incorrect and prompts again', () => {
  const c = makeConsole();
  const row = c.cursor.row;
  press(c, Keysym.Return);
  assert.equal(lineAt(c, row + 1), 'ecs-demo-01 login:', 'an empty login gives a new prompt');
  type(c, 'root');
  press(c, Keysym.Return);
  assert.equal(lineAt(c, c.cursor.row), 'Password:');
  type(c, 'secret');
  assert.equal(lineAt(c, c.cursor.row), 'Password:', 'the password is not shown');
  press(c, Keysym.Return);
  const text = screenText(c);
  assert.ok(text.includes('Login incorrect'));
  assert.equal(lineAt(c, c.cursor.row), 'ecs-demo-01 login:');
  assert.ok(!text.some((l) => l.includes('secret')));
});

test('the text scrolls when it reaches the status line; listeners hear cells and scrolls', () => {
  const c = makeConsole();
  const events: string[] = [];
  const l: ConsoleListener = { cellChanged: (r, col) => events.push(`cell ${r},${col}`), scrolled: (t, b) => events.push(`scroll ${t}-${b}`) };
  c.addListener(l);
  type(c, 'a');
  assert.deepEqual(events.slice(0, 3).sort(), [`cell ${c.cursor.row},${c.cursor.col - 1}`, `cell ${c.cursor.row},${c.cursor.col - 1}`, `cell ${c.cursor.row},${c.cursor.col}`].sort());
  for (let i = 0; i < 10; i++) press(c, Keysym.Return);
  assert.ok(events.includes(`scroll 0-${c.textRows}`));
  assert.equal(c.cursor.row, c.textRows - 1);
  assert.match(lineAt(c, c.rows - 1), /UTC$/, 'the status line does not scroll');
  c.removeListener(l);
});

test('the clock changes only the cells of the digits that changed', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 2, 3, 4, 5));
  const c = makeConsole('vm', clock);
  const cells: number[] = [];
  c.addListener({ cellChanged: (r, col) => cells.push(r * 1000 + col), scrolled: () => undefined });
  c.refreshStatus();
  assert.deepEqual(cells, []);
  clock.advance(1000);
  c.refreshStatus();
  assert.equal(cells.length, 1);
  assert.match(lineAt(c, c.rows - 1), /03:04:06 UTC$/);
});

test('a hostile name is drawn as printable ASCII only', () => {
  const c = makeConsole('<img src=x>\u001b[2J\u00e9'.padEnd(80, 'x'));
  const prompt = lineAt(c, c.cursor.row);
  assert.ok(prompt.startsWith('<img src=x>?[2J?xx'));
  assert.ok(prompt.length < 60);
});

test('the cursor blinks by redrawing its cell only', () => {
  const c = makeConsole();
  const before = c.framebuffer.slice();
  const cells: string[] = [];
  c.addListener({ cellChanged: (r, col) => cells.push(`${r},${col}`), scrolled: () => undefined });
  c.toggleCursor();
  assert.deepEqual(cells, [`${c.cursor.row},${c.cursor.col}`]);
  let changed = 0;
  c.framebuffer.forEach((p, i) => (changed += p === before[i] ? 0 : 1));
  assert.equal(changed, c.cellWidth * c.cellHeight);
});
