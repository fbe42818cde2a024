/**
 * The narrow logging surface the app writes through; the Functions InvocationContext satisfies it. It lives with the
 * observability code that wraps it (trace ids, safe text), and the use cases import it from here.
 */
export interface Logger {
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
}
