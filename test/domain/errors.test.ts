import {
    ensureErrorType,
    isRetryable,
    isTransientStatus,
    PermanentError,
    statusCodeOf,
    TransientError,
} from '../../src/domain/errors';

describe('errors', () => {
    it.each([
        ['a string', 'boom', 'boom'],
        ['undefined', undefined, 'Unknown error'],
        ['an object', { code: 'X' }, '{"code":"X"}'],
    ])('turns %s into an Error', (_, thrown, message) => {
        const e = ensureErrorType(thrown);
        expect(e).toBeInstanceOf(Error);
        expect(e.message).toBe(message);
    });

    it('keeps an Error as it is', () => {
        const e = new TypeError('x');
        expect(ensureErrorType(e)).toBe(e);
    });

    it('knows what is worth retrying', () => {
        expect(isRetryable(new TransientError('429'))).toBe(true);
        expect(isRetryable(new PermanentError('403'))).toBe(false);
        expect(isRetryable(new Error('plain'))).toBe(false);
        expect([undefined, 408, 429, 500, 503].map(isTransientStatus)).toEqual([true, true, true, true, true]);
        expect([400, 401, 403, 404, 409, 412].map(isTransientStatus)).toEqual([
            false,
            false,
            false,
            false,
            false,
            false,
        ]);
    });

    it('reads the status an SDK error carries', () => {
        expect(statusCodeOf({ statusCode: 412 })).toBe(412);
        expect(statusCodeOf(new Error('no status'))).toBeUndefined();
        expect(statusCodeOf(undefined)).toBeUndefined();
    });
});
