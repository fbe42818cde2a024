import { currentTrace, traceIdOf, tracedLogger, withTrace } from '../../src/observability/trace';

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
