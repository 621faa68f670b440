// Where the CLI writes: data on stdout, messages (progress, warnings, errors) on stderr, colour only
// for a terminal and never with NO_COLOR set (https://no-color.org).
import { stripVTControlCharacters, styleText } from 'node:util';

/** A stream the CLI writes to. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** The CLI's outputs and environment; tests give their own. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: NodeJS.ProcessEnv;
}

type Style = Parameters<typeof styleText>[0];

/** Writes lines to stdout and stderr, styled when the stream is a terminal and NO_COLOR is not set. */
export class Output {
  readonly env: NodeJS.ProcessEnv;
  private readonly stdout: OutputStream;
  private readonly stderr: OutputStream;
  private readonly colourOut: boolean;
  private readonly colourErr: boolean;

  constructor(io: CliIo) {
    this.stdout = io.stdout;
    this.stderr = io.stderr;
    this.env = io.env;
    const noColour = Boolean(io.env.NO_COLOR);
    this.colourOut = !noColour && io.stdout.isTTY === true;
    this.colourErr = !noColour && io.stderr.isTTY === true;
  }

  /** A line of data on stdout. */
  data(line: string): void {
    this.stdout.write(`${line}\n`);
  }

  /** Raw data on stdout (no newline added). */
  raw(text: string): void {
    this.stdout.write(text);
  }

  /** A message on stderr. */
  message(line: string): void {
    this.stderr.write(`${line}\n`);
  }

  /** An error on stderr: `training-callbacks: <message>`. */
  error(message: string): void {
    this.stderr.write(`${this.styleErr('red', 'training-callbacks:')} ${message}\n`);
  }

  /** `text` styled for stdout (unchanged without colour). */
  style(style: Style, text: string): string {
    return this.colourOut ? styleText(style, text, { validateStream: false }) : text;
  }

  /** `text` styled for stderr (unchanged without colour). */
  styleErr(style: Style, text: string): string {
    return this.colourErr ? styleText(style, text, { validateStream: false }) : text;
  }
}

/** Columns padded to their widest cell (styles do not count); the last column is not padded. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const width = (text: string) => stripVTControlCharacters(text).length;
  const widths = header.map((title, i) => Math.max(width(title), ...rows.map((row) => width(row[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - width(cell))))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
