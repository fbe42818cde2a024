import { tenantFromWwwAuthenticate } from '../domain/origin';
import { ensureErrorType, TransientError } from '../domain/errors';

/**
 * The home tenant of a subscription, as ARM states it. One question, so one small port: the real adapter asks ARM
 * without a token (ARM refuses with 401 and names the subscription's tenant in `WWW-Authenticate`), the double answers
 * from a map. Neither ever guesses: a subscription whose tenant cannot be established is `undefined`.
 */
export interface SubscriptionTenantLookup {
    /** The subscription's home tenant (a lower-case GUID), or undefined when ARM did not say. */
    tenantOf(subscriptionId: string): Promise<string | undefined>;
}

/** The API version the documented unauthenticated lookup uses. */
export const subscriptionLookupApiVersion = '2022-12-01';

/** A found tenant rarely changes (a subscription moved to another directory), so it is kept for a day. */
export const foundTtlMs = 24 * 60 * 60_000;
/** "Not found" or a failure is kept briefly, so a burst of events does not ask ARM once per event. */
export const missTtlMs = 5 * 60_000;

export interface ArmSubscriptionTenantsOptions {
    endpoint: string;
    maxRetries: number;
    retryDelayInMs: number;
    timeoutMs: number;
    now?: () => number;
}

/**
 * Asks ARM through the Azure core pipeline (its retry policy for 429/5xx/network failures, and the app's per-try
 * timeout), with no credential: the question needs none, and the answer is the 401 itself. Cached per process.
 */
export class ArmSubscriptionTenants implements SubscriptionTenantLookup {
    /** An answer (a tenant, or ARM's "no such subscription"), or a failure to get one, each kept until `until`. */
    private readonly cache = new Map<string, { tenantId: string | undefined; error?: Error; until: number }>();
    private readonly inFlight = new Map<string, Promise<string | undefined>>();
    private pipeline?: Promise<{ send(url: string): Promise<{ status: number; header?: string }> }>;

    constructor(private readonly options: ArmSubscriptionTenantsOptions) {}

    async tenantOf(subscriptionId: string): Promise<string | undefined> {
        const key = subscriptionId.toLowerCase();
        const now = (this.options.now ?? Date.now)();
        const hit = this.cache.get(key);
        if (hit && hit.until > now) {
            if (hit.error) {
                // A failure is kept as one, so each caller within the short while logs it and judges the origin as
                // it would have on a failure of its own, rather than reading an answer ARM never gave.
                throw hit.error;
            }
            return hit.tenantId;
        }
        let pending = this.inFlight.get(key);
        if (!pending) {
            pending = this.ask(key).finally(() => this.inFlight.delete(key));
            this.inFlight.set(key, pending);
        }
        return pending;
    }

    /**
     * Looks the tenant up ahead of need (a process starting). Leaves no failure behind: the first judgement that
     * needs the tenant then asks again and reports its own failure, instead of inheriting one from start-up.
     */
    warm(subscriptionId: string): Promise<void> {
        const key = subscriptionId.toLowerCase();
        return this.tenantOf(key).then(
            () => undefined,
            () => {
                if (this.cache.get(key)?.error) {
                    this.cache.delete(key);
                }
            },
        );
    }

    private async ask(subscriptionId: string): Promise<string | undefined> {
        const now = this.options.now ?? Date.now;
        let tenantId: string | undefined;
        try {
            const client = await (this.pipeline ??= this.createPipeline());
            const url =
                `${this.options.endpoint.replace(/\/+$/, '')}/subscriptions/${encodeURIComponent(subscriptionId)}` +
                `?api-version=${subscriptionLookupApiVersion}`;
            const answer = await client.send(url);
            if (answer.status === 401) {
                tenantId = tenantFromWwwAuthenticate(answer.header);
            } else if (answer.status !== 404) {
                // Still throttled or failing after the pipeline's retries (or an answer ARM does not give without a
                // token): no answer at all, not "no tenant".
                throw new TransientError(
                    `ARM answered ${answer.status} to the lookup of subscription ${subscriptionId}`,
                );
            }
        } catch (err) {
            // Unknown is the safe answer (no rule may auto-approve it). The failure is kept a short while, so a broken
            // network does not hammer ARM, and every caller meanwhile sees it as a failure.
            const error = ensureErrorType(err);
            this.cache.set(subscriptionId, { tenantId: undefined, error, until: now() + missTtlMs });
            throw error;
        }
        this.cache.set(subscriptionId, { tenantId, until: now() + (tenantId ? foundTtlMs : missTtlMs) });
        return tenantId;
    }

    private async createPipeline() {
        // Loaded on first use: most invocations of a warm process answer from the cache.
        const { createPipelineFromOptions, createPipelineRequest } = await import('@azure/core-rest-pipeline');
        const { withoutFormData } = await import('../http/pipeline');
        const { sharedTimeoutHttpClient } = await import('../http/timeout');
        const pipeline = withoutFormData(
            createPipelineFromOptions({
                retryOptions: { maxRetries: this.options.maxRetries, retryDelayInMs: this.options.retryDelayInMs },
            }),
        );
        const httpClient = sharedTimeoutHttpClient(this.options.timeoutMs);
        return {
            async send(url: string) {
                const response = await pipeline.sendRequest(httpClient, createPipelineRequest({ url, method: 'GET' }));
                return { status: response.status, header: response.headers.get('www-authenticate') ?? undefined };
            },
        };
    }
}

/** The in-memory double: a fixed map, and a record of what was asked. */
export class InMemorySubscriptionTenants implements SubscriptionTenantLookup {
    readonly asked: string[] = [];
    private readonly tenants: Map<string, string>;

    constructor(tenants: Record<string, string> = {}) {
        this.tenants = new Map(Object.entries(tenants).map(([s, t]) => [s.toLowerCase(), t.toLowerCase()]));
    }

    set(subscriptionId: string, tenantId: string): void {
        this.tenants.set(subscriptionId.toLowerCase(), tenantId.toLowerCase());
    }

    tenantOf(subscriptionId: string): Promise<string | undefined> {
        this.asked.push(subscriptionId);
        return Promise.resolve(this.tenants.get(subscriptionId.toLowerCase()));
    }
}
