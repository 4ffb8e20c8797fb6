/**
 * What one client has not seen yet, in text cells: a dirty bit a cell, plus a pending scroll that
 * can go out as one CopyRect. Turning it into rectangles merges runs of dirty cells in a row, and
 * identical runs in consecutive rows, so a keystroke is one cell and a repaint is one rectangle.
 */

/** A rectangle in cell units. */
export interface CellRect {
  col: number;
  row: number;
  cols: number;
  rows: number;
}

/** Rows [top, bottom) have moved up by `count` rows since the client last saw them. */
export interface PendingScroll {
  top: number;
  bottom: number;
  count: number;
}

/** Past this many rectangles an update is sent as their bounding box (fewer headers, same pixels). */
const MAX_RECTS = 32;

export class DamageMap {
  private readonly dirty: Uint8Array;
  private dirtyCount: number;
  private scroll: PendingScroll | undefined;

  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {
    // A new client has seen nothing.
    this.dirty = new Uint8Array(cols * rows).fill(1);
    this.dirtyCount = cols * rows;
  }

  /** Anything to send: dirty cells or a pending scroll. */
  get isEmpty(): boolean {
    return this.dirtyCount === 0 && this.scroll === undefined;
  }

  get pendingScroll(): Readonly<PendingScroll> | undefined {
    return this.scroll;
  }

  markCell(row: number, col: number): void {
    const i = row * this.cols + col;
    if (this.dirty[i] === 0) {
      this.dirty[i] = 1;
      this.dirtyCount++;
    }
  }

  markRows(top: number, bottom: number): void {
    for (let r = top; r < bottom; r++) for (let c = 0; c < this.cols; c++) this.markCell(r, c);
  }

  /**
   * Rows [top, bottom) moved up by one on the screen. With `canCopy` the move is remembered for a
   * CopyRect and the dirty bits move with the content (what was stale is still stale, one row
   * higher); otherwise the whole region becomes dirty.
   */
  scrolled(top: number, bottom: number, canCopy: boolean): void {
    const s = this.scroll;
    if (!canCopy || (s && (s.top !== top || s.bottom !== bottom)) || (s?.count ?? 0) + 1 >= bottom - top) {
      this.dropScroll();
      this.markRows(top, bottom);
      return;
    }
    this.scroll = { top, bottom, count: (s?.count ?? 0) + 1 };
    this.dirty.copyWithin(top * this.cols, (top + 1) * this.cols, bottom * this.cols);
    this.dirty.fill(1, (bottom - 1) * this.cols, bottom * this.cols);
    this.dirtyCount = this.dirty.reduce((n, b) => n + b, 0);
  }

  /** Forgets the pending scroll, marking its whole region dirty instead. */
  dropScroll(): void {
    const s = this.scroll;
    if (!s) return;
    this.scroll = undefined;
    this.markRows(s.top, s.bottom);
  }

  /** Takes the pending scroll (the caller sends it as CopyRect first). */
  takeScroll(): PendingScroll | undefined {
    const s = this.scroll;
    this.scroll = undefined;
    return s;
  }

  /** Marks the cells inside `area` clean (the client was just sent all of them). */
  clean(area: CellRect): void {
    for (let r = area.row; r < area.row + area.rows; r++) {
      for (let c = area.col; c < area.col + area.cols; c++) {
        const i = r * this.cols + c;
        if (this.dirty[i] === 1) {
          this.dirty[i] = 0;
          this.dirtyCount--;
        }
      }
    }
  }

  /** Removes and returns the dirty cells inside `area` as merged rectangles. */
  takeRects(area: CellRect): CellRect[] {
    if (this.dirtyCount === 0) return [];
    const rects: CellRect[] = [];
    // Rectangles that ended on the previous row, by their column span, to grow downwards.
    let open = new Map<number, CellRect>();
    for (let r = area.row; r < area.row + area.rows; r++) {
      const next = new Map<number, CellRect>();
      let c = area.col;
      const end = area.col + area.cols;
      while (c < end) {
        if (this.dirty[r * this.cols + c] !== 1) {
          c++;
          continue;
        }
        const start = c;
        while (c < end && this.dirty[r * this.cols + c] === 1) c++;
        const key = start * 65536 + c;
        const above = open.get(key);
        if (above) {
          above.rows++;
          next.set(key, above);
        } else {
          const rect = { col: start, row: r, cols: c - start, rows: 1 };
          rects.push(rect);
          next.set(key, rect);
        }
      }
      open = next;
    }
    for (const rect of rects) this.clean(rect);
    if (rects.length <= MAX_RECTS) return rects;
    const col = Math.min(...rects.map((x) => x.col));
    const row = Math.min(...rects.map((x) => x.row));
    const right = Math.max(...rects.map((x) => x.col + x.cols));
    const bottom = Math.max(...rects.map((x) => x.row + x.rows));
    return [{ col, row, cols: right - col, rows: bottom - row }];
  }
}
