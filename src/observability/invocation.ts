import type { InvocationContext } from '@azure/functions';
import { peekDeps } from '../runtime';
import type { Logger } from './logger';
import { traceIdOf, tracedLogger, withTrace, type TraceFields } from './trace';

/**
 * The frame of every function invocation: the invocation's ids in scope for every log line, a logger that prints
 * them, and the work left behind the steps (audit anchors) and the milestone events finished before the host may
 * freeze the process.
 */
export async function observe<T>(
    context: InvocationContext,
    fields: TraceFields,
    run: (log: Logger) => Promise<T>,
): Promise<T> {
    const frame: TraceFields = {
        invocationId: context.invocationId,
        operationId: traceIdOf(context.traceContext?.traceParent),
        ...fields,
    };
    return withTrace(frame, async () => {
        const log = tracedLogger(context);
        try {
            return await run(log);
        } finally {
            const deps = peekDeps();
            // The milestone events go out while the last anchors are written; an anchor write that fails meanwhile
            // reports to the telemetry, so what it tracked goes in a second flush (nothing to send, no call).
            await Promise.all([deps?.settle?.(), deps?.telemetry.flush(log)]);
            await deps?.telemetry.flush(log);
        }
    });
}
