import type { Pipeline } from '@azure/core-rest-pipeline';

/**
 * Removes the Azure core pipeline's form-data policy from a client's pipeline. The policy runs on every request and
 * tests `typeof FormData`, and on Node.js 20 that first look at the global loads Node's whole fetch implementation
 * (undici): 15-25 ms of every cold start, spent on the first ARM, storage or Bot Connector call. No request of this
 * app has a form body, so the policy has nothing to do here.
 */
export function withoutFormData<T extends Pipeline | { pipeline: Pipeline }>(target: T): T {
    const pipeline: Pipeline = 'pipeline' in target ? target.pipeline : target;
    pipeline.removePolicy({ name: 'formDataPolicy' });
    return target;
}

/**
 * The same for a Storage (blob) client, whose core pipeline is built inside the SDK and kept on its protected
 * `storageClientContext`: every client derived from one service client (container, append blob...) shares that one
 * pipeline, so taking the policy out of the container client's takes it out of theirs. On the first event this is the
 * audit anchor's append, which otherwise loads undici. Does nothing when the SDK keeps its pipeline elsewhere (a test
 * checks it takes effect on the pinned @azure/storage-blob).
 */
export function storageWithoutFormData<T extends object>(client: T): T {
    const context = (client as { storageClientContext?: { pipeline?: Pipeline } }).storageClientContext;
    if (context?.pipeline && typeof context.pipeline.removePolicy === 'function') {
        withoutFormData(context.pipeline);
    }
    return client;
}
