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
