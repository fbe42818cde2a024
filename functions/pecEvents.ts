import { app, type EventGridEvent, type InvocationContext } from '@azure/functions';
import { getDeps } from '../src/runtime';
import { onResourceEvent } from '../src/workflow/onResourceEvent';

/**
 * Event Grid: resource events from each watched subscription's system topic (Event Grid schema or CloudEvents).
 * Invalid and irrelevant events are logged and dropped before any I/O; a thrown error makes Event Grid redeliver,
 * which is safe because the handling is idempotent.
 */
export async function pecEvents(event: EventGridEvent, context: InvocationContext): Promise<void> {
    const outcome = await onResourceEvent(getDeps(), event, context);
    if (outcome.kind === 'handled') {
        context.info(
            `Event ${event.id}: ${outcome.pending} pending, opened ${outcome.opened.length} request(s): ${JSON.stringify(outcome.cards)}`,
        );
    }
}

app.eventGrid('pecEvents', { handler: pecEvents });
