/**
 * The demo's screen: a text console (boot log, getty-style login prompt, blinking cursor, a status
 * line with the time) rendered with a bitmap font into an RGB888 framebuffer. It tells listeners
 * which cells changed and when the text scrolled, so each client can be sent only that.
 */
import type { Clock } from '../clock.js';
import { Keysym } from '../rfb/constants.js';
import type { BitmapFont } from './bitmap-font.js';
import { bootLog } from './boot-log.js';

/** Colour roles of the console and their foreground/background (0xRRGGBB). */
const ROLES = {
  normal: [0xaaaaaa, 0x000000],
  bright: [0xffffff, 0x000000],
  dim: [0x6c6c6c, 0x000000],
  ok: [0x55ff55, 0x000000],
  notice: [0xffff55, 0x000000],
  status: [0xffffff, 0x1f4e79],
} as const;
type Role = keyof typeof ROLES;
const ROLE_LIST = Object.keys(ROLES) as Role[];
const ATTR: Record<Role, number> = Object.fromEntries(ROLE_LIST.map((r, i) => [r, i])) as Record<Role, number>;

/** What a client session listens to. */
export interface ConsoleListener {
  /** The cell at (row, col) looks different now. */
  cellChanged(row: number, col: number): void;
  /** Rows [top, bottom) moved up by one row (the top one is gone); the framebuffer shows it already. */
  scrolled(top: number, bottom: number): void;
}

/** Options of a {@link DemoConsole}. */
export interface DemoConsoleOptions {
  /** The server's name: in the boot log, the prompt and the status line. */
  name: string;
  width: number;
  height: number;
  font: BitmapFont;
  clock: Clock;
}

const SPACE = 0x20;
const MAX_INPUT = 128;
const TAB_STOP = 8;

/** The console's text, its pixels and its (shared) keyboard input. */
export class DemoConsole {
  readonly width: number;
  readonly height: number;
  readonly cols: number;
  readonly rows: number;
  /** Rows 0..textRows-1 scroll; the last row is the status line. */
  readonly textRows: number;
  readonly cellWidth: number;
  readonly cellHeight: number;
  /** RGB888 pixels (0xRRGGBB), row-major. */
  readonly framebuffer: Uint32Array;

  private readonly chars: Uint8Array;
  private readonly attrs: Uint8Array;
  private readonly listeners = new Set<ConsoleListener>();
  private readonly font: BitmapFont;
  private readonly clock: Clock;
  private readonly displayName: string;
  private row = 0;
  private col = 0;
  /** Off while the constructor writes the boot log; on (and blinking) afterwards. */
  private cursorOn = false;
  private mode: 'login' | 'password' = 'login';
  /** Cells each typed character took (a Tab takes several), for Backspace. */
  private input: number[] = [];

  constructor(opts: DemoConsoleOptions) {
    this.font = opts.font;
    this.clock = opts.clock;
    this.width = opts.width;
    this.height = opts.height;
    this.cellWidth = opts.font.cellWidth;
    this.cellHeight = opts.font.cellHeight;
    this.cols = Math.floor(opts.width / this.cellWidth);
    this.rows = Math.floor(opts.height / this.cellHeight);
    if (this.cols < 20 || this.rows < 4) throw new RangeError(`screen ${opts.width}x${opts.height} is too small for a console`);
    this.textRows = this.rows - 1;
    this.framebuffer = new Uint32Array(opts.width * opts.height).fill(ROLES.normal[1]);
    this.chars = new Uint8Array(this.cols * this.rows).fill(SPACE);
    this.attrs = new Uint8Array(this.cols * this.rows);
    // NOTE: the name comes from configuration, but it is drawn glyph by glyph: anything outside
    // printable ASCII becomes '?', and it is cut so the prompt stays on one line.
    this.displayName = [...opts.name].map((c) => (c >= ' ' && c <= '~' ? c : '?')).join('').slice(0, 48) || 'localhost';
    for (let r = 0; r < this.rows; r++) for (let c = 0; c < this.cols; c++) this.renderCell(r, c);
    for (const line of bootLog(this.displayName)) {
      for (const span of line) this.write(span.text, span.role);
      this.newline();
    }
    this.write(this.prompt(), 'bright');
    this.refreshStatus();
    this.setCursor(true);
  }

  addListener(l: ConsoleListener): void {
    this.listeners.add(l);
  }

  removeListener(l: ConsoleListener): void {
    this.listeners.delete(l);
  }

  /** Character code at (row, col) (tests read the text through this). */
  charAt(row: number, col: number): number {
    return this.chars[row * this.cols + col] ?? SPACE;
  }

  /** Where the cursor is. */
  get cursor(): { row: number; col: number } {
    return { row: this.row, col: this.col };
  }

  /** RFC 6143 7.5.4 KeyEvent with an X11 keysym; shared by every client. */
  handleKey(keysym: number, down: boolean): void {
    if (!down) return;
    if (keysym === Keysym.Return || keysym === Keysym.KP_Enter) this.enter();
    else if (keysym === Keysym.BackSpace) this.backspace();
    else if (keysym === Keysym.Tab) this.typeTab();
    else if (keysym >= 0x20 && keysym <= 0x7e) this.typeChar(keysym);
  }

  /** Blinks the cursor. */
  toggleCursor(): void {
    this.setCursor(!this.cursorOn);
  }

  /** Redraws the status line; only cells whose text changed (the clock's digits) are reported. */
  refreshStatus(): void {
    const now = new Date(this.clock.now()).toISOString();
    const time = `${now.slice(0, 10)} ${now.slice(11, 19)} UTC `;
    const left = ` ${this.displayName} | tty1 | ecs-console demo VNC server`;
    const line = left.slice(0, this.cols - time.length).padEnd(this.cols - time.length) + time;
    for (let c = 0; c < this.cols; c++) this.setCell(this.textRows, c, line.charCodeAt(c), ATTR.status);
  }

  private prompt(): string {
    return this.mode === 'login' ? `${this.displayName} login: ` : 'Password: ';
  }

  private typeChar(code: number): void {
    if (this.input.length >= MAX_INPUT) return;
    if (this.mode === 'password') {
      this.input.push(0); // typed, not shown
      return;
    }
    this.withCursorHidden(() => this.put(code, ATTR.bright));
    this.input.push(1);
  }

  private typeTab(): void {
    if (this.input.length >= MAX_INPUT) return;
    if (this.mode === 'password') {
      this.input.push(0);
      return;
    }
    const n = TAB_STOP - (this.col % TAB_STOP);
    this.withCursorHidden(() => {
      for (let i = 0; i < n; i++) this.put(SPACE, ATTR.bright);
    });
    this.input.push(n);
  }

  private backspace(): void {
    const cells = this.input.pop();
    if (cells === undefined || cells === 0) return;
    this.withCursorHidden(() => {
      for (let i = 0; i < cells; i++) {
        if (this.col > 0) this.col--;
        else if (this.row > 0) {
          this.row--;
          this.col = this.cols - 1;
        }
        this.setCell(this.row, this.col, SPACE, ATTR.normal);
      }
    });
  }

  private enter(): void {
    const typed = this.input.length;
    this.input = [];
    this.withCursorHidden(() => {
      this.newline();
      if (this.mode === 'login') {
        if (typed > 0) this.mode = 'password';
      } else {
        this.write('Login incorrect', 'normal');
        this.newline();
        this.newline();
        this.mode = 'login';
      }
      this.write(this.prompt(), 'bright');
    });
  }

  /** Writes text at the cursor (no cursor handling: callers hide it around edits). */
  private write(text: string, role: Role): void {
    for (let i = 0; i < text.length; i++) this.put(text.charCodeAt(i), ATTR[role]);
  }

  private put(code: number, attr: number): void {
    this.setCell(this.row, this.col, code, attr);
    this.col++;
    if (this.col === this.cols) this.newline();
  }

  private newline(): void {
    this.col = 0;
    if (this.row + 1 < this.textRows) this.row++;
    else this.scrollUp();
  }

  /** Moves the text rows up by one, in the character grid and the framebuffer. */
  private scrollUp(): void {
    const cols = this.cols;
    const rowPixels = this.cellHeight * this.width;
    this.chars.copyWithin(0, cols, this.textRows * cols);
    this.attrs.copyWithin(0, cols, this.textRows * cols);
    this.framebuffer.copyWithin(0, rowPixels, this.textRows * rowPixels);
    const last = this.textRows - 1;
    this.chars.fill(SPACE, last * cols, this.textRows * cols);
    this.attrs.fill(ATTR.normal, last * cols, this.textRows * cols);
    for (let c = 0; c < cols; c++) this.renderCell(last, c);
    for (const l of this.listeners) l.scrolled(0, this.textRows);
  }

  private withCursorHidden(edit: () => void): void {
    this.setCursor(false);
    edit();
    this.setCursor(true);
  }

  private setCursor(on: boolean): void {
    if (this.cursorOn === on) return;
    this.cursorOn = on;
    this.renderCell(this.row, this.col);
    this.changed(this.row, this.col);
  }

  private setCell(row: number, col: number, code: number, attr: number): void {
    const i = row * this.cols + col;
    if (this.chars[i] === code && this.attrs[i] === attr) return;
    this.chars[i] = code;
    this.attrs[i] = attr;
    this.renderCell(row, col);
    this.changed(row, col);
  }

  private changed(row: number, col: number): void {
    for (const l of this.listeners) l.cellChanged(row, col);
  }

  /** Draws one cell; the cursor cell is drawn inverted while the cursor is on. */
  private renderCell(row: number, col: number): void {
    const i = row * this.cols + col;
    const role = ROLE_LIST[this.attrs[i] ?? 0] ?? 'normal';
    let [fg, bg]: readonly number[] = ROLES[role];
    if (this.cursorOn && row === this.row && col === this.col) [fg, bg] = [bg, fg];
    const glyph = this.font.glyph(this.chars[i] ?? SPACE);
    const cw = this.cellWidth;
    const x0 = col * cw;
    const y0 = row * this.cellHeight;
    for (let y = 0; y < this.cellHeight; y++) {
      const base = (y0 + y) * this.width + x0;
      for (let x = 0; x < cw; x++) this.framebuffer[base + x] = glyph[y * cw + x] ? (fg ?? 0) : (bg ?? 0);
    }
  }
}
