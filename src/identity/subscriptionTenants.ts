import { tenantFromWwwAuthenticate } from '../domain/origin';
import { ensureErrorType } from '../domain/errors';

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
    private readonly cache = new Map<string, { tenantId: string | undefined; until: number }>();
    private readonly inFlight = new Map<string, Promise<string | undefined>>();
    private pipeline?: Promise<{ send(url: string): Promise<{ status: number; header?: string }> }>;

    constructor(private readonly options: ArmSubscriptionTenantsOptions) {}

    async tenantOf(subscriptionId: string): Promise<string | undefined> {
        const key = subscriptionId.toLowerCase();
        const now = (this.options.now ?? Date.now)();
        const hit = this.cache.get(key);
        if (hit && hit.until > now) {
            return hit.tenantId;
        }
        let pending = this.inFlight.get(key);
        if (!pending) {
            pending = this.ask(key).finally(() => this.inFlight.delete(key));
            this.inFlight.set(key, pending);
        }
        return pending;
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
            tenantId = answer.status === 401 ? tenantFromWwwAuthenticate(answer.header) : undefined;
        } catch (err) {
            // Unknown is the safe answer (no rule may auto-approve it); the cause is kept for the caller's log only
            // through the short miss cache, so a broken network does not hammer ARM.
            this.cache.set(subscriptionId, { tenantId: undefined, until: now() + missTtlMs });
            throw ensureErrorType(err);
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
