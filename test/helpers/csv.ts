/** Reading CSV back as a spreadsheet does, to check what an export gives. */
import assert from 'node:assert/strict';

/** RFC 4180 as a spreadsheet reads it: fields split on commas, quoted fields may hold commas, "" and line breaks. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  assert.equal(quoted, false, 'no quoted field left open');
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}
