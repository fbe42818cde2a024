import { app, type EventGridEvent, type InvocationContext } from '@azure/functions';
import { observe } from '../src/observability/invocation';
import { getDeps } from '../src/runtime';
import { onResourceEvent } from '../src/workflow/onResourceEvent';

/**
 * Event Grid: resource events from each watched subscription's system topic (Event Grid schema or CloudEvents).
 * Invalid and irrelevant events are logged and dropped before any I/O; a thrown error makes Event Grid redeliver,
 * which is safe because the handling is idempotent.
 */
export async function pecEvents(event: EventGridEvent, context: InvocationContext): Promise<void> {
    await observe(context, {}, (log) => onResourceEvent(getDeps(), event, log));
}

app.eventGrid('pecEvents', { handler: pecEvents });
