// The reconnect rules of a watch, on streams that fail on cue (the wire behaviour, against the real
// sidecar through a real proxy, is in cli.spec.ts).
import { RpcError, Status } from '@training-callbacks/client';
import { describe, expect, it } from 'vitest';
import { type ResumableWatchOptions, resumableWatch } from './resumable-watch.ts';

type Event = { seq: bigint };

/** A scripted stream per connection: events, then an error, a stall (never ends) or an end. */
type Script = { events: number[]; after: 'error' | 'stall' | 'end' | 'refuse'; code?: number };

function watchOf(scripts: Script[], overrides: Partial<ResumableWatchOptions<Event>> = {}) {
  const opened: { afterSeq: bigint; fromHead: boolean }[] = [];
  const messages: string[] = [];
  const controller = new AbortController();
  const options: ResumableWatchOptions<Event> = {
    afterSeq: 0n,
    fromHead: false,
    signal: controller.signal,
    reconnectForMs: 60_000,
    stallMs: 200,
    onReconnecting: (error, afterSeq) => messages.push(`lost ${error.codeName} after ${afterSeq}`),
    onReconnected: (afterSeq) => messages.push(`back after ${afterSeq}`),
    open(afterSeq, fromHead, signal) {
      opened.push({ afterSeq, fromHead });
      const script = scripts.shift();
      return (async function* () {
        if (!script) {
          controller.abort();
          return;
        }
        if (script.after === 'refuse') throw new RpcError(script.code ?? Status.UNAVAILABLE, 'refused');
        for (const seq of script.events) yield { seq: BigInt(seq) };
        if (script.after === 'error')
          throw new RpcError(script.code ?? Status.UNAVAILABLE, 'connection reset');
        if (script.after === 'stall') {
          await new Promise<void>((resolve) =>
            signal.addEventListener('abort', () => resolve(), { once: true }),
          );
          throw new RpcError(Status.CANCELLED, 'cancelled');
        }
      })();
    },
    ...overrides,
  };
  return { opened, messages, controller, events: resumableWatch(options) };
}

async function collect(events: AsyncIterable<Event>): Promise<number[]> {
  const seqs: number[] = [];
  for await (const event of events) seqs.push(Number(event.seq));
  return seqs;
}

describe('resumableWatch', () => {
  it('resumes after the last seq received, after a dropped stream, a stall and an end', async () => {
    const { opened, messages, events } = watchOf([
      { events: [1, 2], after: 'error' },
      { events: [3], after: 'stall' },
      { events: [4, 5], after: 'end' },
      { events: [6], after: 'error', code: Status.INTERNAL },
      { events: [7], after: 'end' },
    ]);
    expect(await collect(events)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(opened.map((o) => o.afterSeq)).toEqual([0n, 2n, 3n, 5n, 6n, 7n]);
    expect(messages[0]).toBe('lost UNAVAILABLE after 2');
    expect(messages[1]).toBe('back after 2');
    expect(messages).toContain('lost UNAVAILABLE after 3'); // the stall
  });

  it('a heartbeat repeating the last seq does not move the cursor back; from the head only until the first seq', async () => {
    const { opened, events } = watchOf(
      [
        { events: [9, 9], after: 'error' },
        { events: [10], after: 'end' },
      ],
      {
        fromHead: true,
      },
    );
    expect(await collect(events)).toEqual([9, 9, 10]);
    expect(opened).toEqual([
      { afterSeq: 0n, fromHead: true },
      { afterSeq: 9n, fromHead: false },
      { afterSeq: 10n, fromHead: false },
    ]);
  });

  it('fails at once when the first connection fails, and on a status that retrying cannot fix', async () => {
    await expect(collect(watchOf([{ events: [], after: 'refuse' }]).events)).rejects.toMatchObject({
      code: Status.UNAVAILABLE,
    });
    await expect(
      collect(watchOf([{ events: [1], after: 'error', code: Status.PERMISSION_DENIED }]).events),
    ).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
  });

  it('gives up when reconnecting keeps failing for longer than reconnectForMs', async () => {
    const refusals = Array.from({ length: 50 }, () => ({ events: [], after: 'refuse' as const }));
    const { events, messages } = watchOf([{ events: [1], after: 'error' }, ...refusals], {
      reconnectForMs: 300,
    });
    await expect(collect(events)).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    expect(messages.length).toBeGreaterThan(1);
  });
});
