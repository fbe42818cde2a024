import { app, type InvocationContext } from '@azure/functions';
import { observe } from '../src/observability/invocation';
import { getDeps } from '../src/runtime';
import { withTrace } from '../src/observability/trace';
import { applyMaxAttempts, applyMessageSchema, applyQueueName, type ApplyMessage } from '../src/storage/applyQueue';
import type { Logger } from '../src/observability/logger';
import { applyDecision } from '../src/workflow/applyDecision';
import { issuesText } from '../src/workflow/validation';

/**
 * Applies a recorded decision through ARM. A thrown error makes the host deliver the message again after the queue's
 * visibility timeout; after `applyMaxAttempts` deliveries the request is marked failed and the message goes to the
 * poison queue. An invalid message is logged and dropped: it cannot be ours, and it writes nothing.
 */
export async function applyDecisionFunction(queueItem: unknown, context: InvocationContext): Promise<void> {
    await observe(context, {}, (log) => handleMessage(queueItem, context, log));
}

async function handleMessage(queueItem: unknown, context: InvocationContext, log: Logger): Promise<void> {
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
        log.error(`ALERT invalid apply message dropped: ${issuesText(parsed.error)}`);
        return;
    }
    const { requestId, correlationId } = parsed.data;
    await withTrace({ requestId, correlationId }, () => apply(parsed.data, context, log));
}

async function apply(message: ApplyMessage, context: InvocationContext, log: Logger): Promise<void> {
    const metadata = context.triggerMetadata ?? {};
    const attempt = typeof metadata.dequeueCount === 'number' ? metadata.dequeueCount : 1;
    const messageId = typeof metadata.id === 'string' ? metadata.id : context.invocationId;
    const outcome = await applyDecision(getDeps(), message, { messageId, attempt, maxAttempts: applyMaxAttempts }, log);
    log.info(`Request ${message.requestId}: ${outcome} (attempt ${attempt})`);
}

app.storageQueue('applyDecision', {
    queueName: applyQueueName,
    connection: 'AzureWebJobsStorage',
    handler: applyDecisionFunction,
});
