/** The recording worker's appender: whole blocks with direct I/O, the partial one through the page cache, exact bytes either way. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIRECT_BLOCK, FileAppender } from '../../../src/recording/file-appender.js';
import { tempDir } from '../../helpers/stack.js';

/** Appends of these sizes (some under a block, some over, some landing on a block's edge), each in 1-3 pieces. */
const SIZES = [7, 300, DIRECT_BLOCK - 307, DIRECT_BLOCK, 5000, 3 * DIRECT_BLOCK + 1, 65_536, 1, 4 * 1024 * 1024 + 13, 100, DIRECT_BLOCK * 2];

async function appendAll(a: FileAppender, path: string): Promise<Buffer> {
  const expected: Buffer[] = [];
  let at = 0;
  for (const [i, size] of SIZES.entries()) {
    const data = randomBytes(size);
    const cut1 = Math.floor(size / 3);
    const cut2 = Math.floor((2 * size) / 3);
    const pieces = i % 2 === 0 ? [data] : [data.subarray(0, cut1), data.subarray(cut1, cut2), data.subarray(cut2)];
    await a.append(path, at, pieces, size);
    at += size;
    expected.push(data);
    // The file is exactly what was appended after every append (a kill here leaves all of it).
    assert.equal(statSync(path).size, at, `length after append ${i}`);
  }
  return Buffer.concat(expected);
}

test('appends of any size land byte for byte, the file always exactly their length; whole blocks go around the page cache', async () => {
  const path = join(tempDir(), 'a.ecsrec');
  const a = new FileAppender();
  const expected = await appendAll(a, path);
  assert.ok(readFileSync(path).equals(expected));
  // The test directory's filesystem takes O_DIRECT (ext4 and tmpfs here): most bytes went direct.
  const probe = openSync(path, constants.O_WRONLY | constants.O_DIRECT);
  closeSync(probe);
  assert.ok(a.usesDirectIo);
  assert.ok(a.directBytes > expected.length * 0.9, `${a.directBytes} of ${expected.length} bytes direct`);
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('creating never opens a file that exists, nor follows a symlink', async () => {
  const path = join(tempDir(), 'b.ecsrec');
  writeFileSync(path, 'someone else');
  await assert.rejects(new FileAppender().append(path, 0, [Buffer.from('x')], 1), { code: 'EEXIST' });
  assert.equal(readFileSync(path, 'utf8'), 'someone else');
  // A symlink planted at the path, even one pointing nowhere yet, is refused, not followed.
  const link = join(tempDir(), 'l.ecsrec');
  const target = join(tempDir(), 'target');
  symlinkSync(target, link);
  await assert.rejects(new FileAppender().append(link, 0, [randomBytes(3 * DIRECT_BLOCK)], 3 * DIRECT_BLOCK), { code: 'EEXIST' });
  assert.equal(existsSync(target), false);
});

test('a filesystem that refuses O_DIRECT: the same bytes through the page cache, and no direct try again', async () => {
  const path = join(tempDir(), 'c.ecsrec');
  let tries = 0;
  const a = new FileAppender({
    openDirect: () => {
      tries++;
      throw Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
    },
  });
  const expected = await appendAll(a, path);
  assert.ok(readFileSync(path).equals(expected));
  assert.equal(a.usesDirectIo, false);
  assert.equal(a.directBytes, 0);
  assert.equal(tries, 1);
});

test('memory the device will not take (EINVAL at the write): that append and the rest through the page cache, nothing lost', async () => {
  const path = join(tempDir(), 'd.ecsrec');
  const a = new FileAppender({ misalign: 1 });
  const expected = await appendAll(a, path);
  assert.ok(readFileSync(path).equals(expected));
  assert.equal(a.usesDirectIo, false);
  assert.equal(a.directBytes, 0);
});

test('an error other than EINVAL (the directory gone) reaches the caller', async () => {
  const a = new FileAppender();
  await assert.rejects(a.append(join(tempDir(), 'no', 'such', 'dir.ecsrec'), 0, [randomBytes(3 * DIRECT_BLOCK)], 3 * DIRECT_BLOCK), { code: 'ENOENT' });
  assert.ok(a.usesDirectIo);
});

test('release drops the aligned memory; the next append takes it again', async () => {
  const path = join(tempDir(), 'e.ecsrec');
  const a = new FileAppender();
  const one = randomBytes(2 * DIRECT_BLOCK + 5);
  await a.append(path, 0, [one], one.length);
  a.release();
  const two = randomBytes(3 * DIRECT_BLOCK);
  await a.append(path, one.length, [two], two.length);
  assert.ok(readFileSync(path).equals(Buffer.concat([one, two])));
  assert.ok(a.directBytes >= 4 * DIRECT_BLOCK);
});
