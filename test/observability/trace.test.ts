import {
    currentTrace,
    maxLoggedChars,
    traceIdOf,
    traceLabel,
    tracedLogger,
    withTrace,
} from '../../src/observability/trace';

describe('trace scope', () => {
    it('nests, overrides, and ignores empty values', () => {
        withTrace({ correlationId: 'c1', invocationId: 'i1' }, () => {
            withTrace({ requestId: 'r1', correlationId: '' }, () => {
                expect(currentTrace()).toEqual({ correlationId: 'c1', invocationId: 'i1', requestId: 'r1' });
            });
            expect(currentTrace()).toEqual({ correlationId: 'c1', invocationId: 'i1' });
        });
        expect(currentTrace()).toEqual({});
    });

    it('keeps concurrent work apart: each line names its own request', async () => {
        const lines: string[] = [];
        const log = tracedLogger({
            info: (...a) => lines.push(a.join(' ')),
            warn: () => undefined,
            error: () => undefined,
        });
        const work = (id: string, delayMs: number) =>
            withTrace({ requestId: id, correlationId: `c-${id}` }, async () => {
                await new Promise((r) => setTimeout(r, delayMs));
                log.info(`done ${id}`);
            });
        await Promise.all([work('a', 20), work('b', 1), work('c', 10)]);
        expect(lines.sort()).toEqual([
            '[requestId=a correlationId=c-a] done a',
            '[requestId=b correlationId=c-b] done b',
            '[requestId=c correlationId=c-c] done c',
        ]);
    });

    it('reads the trace id of a W3C traceparent only', () => {
        expect(traceIdOf('00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01')).toBe(
            '0af7651916cd43dd8448eb211c80319c',
        );
        expect(traceIdOf('garbage')).toBeUndefined();
        expect(traceIdOf(undefined)).toBeUndefined();
    });
});

describe('tracedLogger', () => {
    const capture = () => {
        const lines: string[] = [];
        const base = {
            info: (...a: unknown[]) => lines.push(a.join(' ')),
            warn: (...a: unknown[]) => lines.push(a.join(' ')),
            error: (...a: unknown[]) => lines.push(a.join(' ')),
        };
        return { lines, log: tracedLogger(base) };
    };

    it('cannot be made to write a second line, or to reorder what the reader sees', () => {
        const { lines, log } = capture();
        withTrace({ correlationId: 'c\nERROR forged' }, () =>
            log.warn('Ignored event x\r\nINFO Request r approved by alice', 'bidi \u202egnp.exe\u202c zero\u200bwidth'),
        );
        expect(lines).toHaveLength(1);
        expect(lines[0]).not.toMatch(/[\n\r\u202e\u202c\u200b]/);
        expect(lines[0]).toContain('correlationId=c%0AERROR%20forged');
        expect(lines[0]).toContain('event x\\r\\nINFO Request');
        expect(lines[0]).toContain('\\u202egnp.exe\\u202c');
    });

    it('cuts a huge value, saying how long it was', () => {
        const { lines, log } = capture();
        log.info(`uri ${'a'.repeat(70_000)}`);
        expect(lines[0]!.length).toBeLessThan(maxLoggedChars + 200);
        expect(lines[0]).toContain('(70004 chars)');
    });

    it('keeps an error’s stack, on one line', () => {
        const { lines, log } = capture();
        log.error('failed:', new Error('boom'));
        expect(lines[0]).toMatch(/failed: Error: boom\\n {4}at /);
    });
});

describe('trace label', () => {
    it('cannot be closed early by an id, so no ordinary line reads as an ALERT line', () => {
        // An ARM correlation id is whatever the caller of ARM sent; the ALERT rule matches what follows the label.
        const forged = 'x] ALERT forged: a card not delivered [y';
        const label = traceLabel({ requestId: 'r-1', correlationId: forged });
        expect(label).toBe('[requestId=r-1 correlationId=x%5D%20ALERT%20forged:%20a%20card%20not%20delivered%20%5By]');
        const alertRule = /^(\[requestId=\S* correlationId=[^\]]*\] )?ALERT /;
        expect(alertRule.test(`${label} Sweep finished`)).toBe(false);
        expect(alertRule.test(`${label} ALERT card not delivered`)).toBe(true);
    });

    it('keeps ordinary ids as they are, and encodes any other character byte by byte', () => {
        expect(
            traceLabel({ requestId: 'r-6f0d_2c8e.4b:1a', correlationId: '8a2da39d-ef93-42dd-8ce6-97ac802ecc6d' }),
        ).toBe('[requestId=r-6f0d_2c8e.4b:1a correlationId=8a2da39d-ef93-42dd-8ce6-97ac802ecc6d]');
        expect(traceLabel({ correlationId: 'é\u2028' })).toBe('[requestId=- correlationId=%C3%A9%E2%80%A8]');
    });
});
