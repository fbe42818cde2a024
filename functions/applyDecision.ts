import { app, type InvocationContext } from '@azure/functions';
import { getDeps } from '../src/runtime';
import { applyMaxAttempts, applyMessageSchema, applyQueueName } from '../src/storage/applyQueue';
import { applyDecision } from '../src/workflow/applyDecision';
import { issuesText } from '../src/validation';

/**
 * Applies a recorded decision through ARM. A thrown error makes the host deliver the message again after the queue's
 * visibility timeout; after `applyMaxAttempts` deliveries the request is marked failed and the message goes to the
 * poison queue. An invalid message is logged and dropped: it cannot be ours, and it writes nothing.
 */
export async function applyDecisionFunction(queueItem: unknown, context: InvocationContext): Promise<void> {
    let item = queueItem;
    if (typeof item === 'string') {
        try {
            item = JSON.parse(item);
        } catch {
            // Left as the string; the schema says why it is refused.
        }
    }
    const parsed = applyMessageSchema.safeParse(item);
    if (!parsed.success) {
        context.error(`ALERT invalid apply message dropped: ${issuesText(parsed.error)}`);
        return;
    }
    const metadata = context.triggerMetadata ?? {};
    const attempt = typeof metadata.dequeueCount === 'number' ? metadata.dequeueCount : 1;
    const messageId = typeof metadata.id === 'string' ? metadata.id : context.invocationId;
    const outcome = await applyDecision(
        getDeps(),
        parsed.data,
        { messageId, attempt, maxAttempts: applyMaxAttempts },
        context,
    );
    context.info(`Request ${parsed.data.requestId}: ${outcome} (attempt ${attempt})`);
}

app.storageQueue('applyDecision', {
    queueName: applyQueueName,
    connection: 'AzureWebJobsStorage',
    handler: applyDecisionFunction,
});
