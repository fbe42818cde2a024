import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import {
    createDefaultHttpClient,
    createHttpHeaders,
    createPipelineFromOptions,
    createPipelineRequest,
    type HttpClient,
    type Pipeline,
} from '@azure/core-rest-pipeline';
import { PermanentError, TransientError } from '../domain/errors';
import { withoutFormData } from '../http/pipeline';

/**
 * The managed identity's tokens through the endpoint App Service and Azure Functions give every app with an identity:
 * `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…&client_id=…` with the `X-IDENTITY-HEADER` secret.
 *
 * Why not @azure/identity's ManagedIdentityCredential: it brings MSAL (and jsonwebtoken) along, about 1 MB of code
 * and 20-30 ms of a cold start, to make this one GET. The HTTP part here is still the Azure SDK's: the core pipeline
 * with its retry policies (exponential back-off on 5xx and connection errors, Retry-After on 429). Where the platform
 * provides no identity endpoint (a laptop), runtime.ts falls back to DefaultAzureCredential, loaded on first use.
 *
 * Tokens are cached per resource until five minutes before they expire, and concurrent requests for one resource
 * share one fetch, so a burst of invocations costs one token request.
 */
export interface ManagedIdentityOptions {
    endpoint: string;
    secret: string;
    /** The user-assigned identity's client id; absent for the system-assigned one. */
    clientId?: string;
    maxRetries?: number;
    retryDelayInMs?: number;
    httpClient?: HttpClient;
    now?: () => number;
}

const refreshMarginMs = 5 * 60 * 1000;

export class ManagedIdentityCredential implements TokenCredential {
    private readonly cache = new Map<string, Promise<AccessToken>>();
    private readonly pipeline: Pipeline;
    private readonly now: () => number;

    constructor(private readonly options: ManagedIdentityOptions) {
        this.pipeline = createPipelineFromOptions({
            retryOptions: { maxRetries: options.maxRetries ?? 3, retryDelayInMs: options.retryDelayInMs ?? 800 },
        });
        this.now = options.now ?? Date.now;
        withoutFormData(this.pipeline);
    }

    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
        const resource = resourceOf(scopes);
        const cached = this.cache.get(resource);
        if (cached) {
            // A settled promise that failed was deleted below, so this is a token or a fetch in flight.
            const token = await cached;
            if (token.expiresOnTimestamp - refreshMarginMs > this.now()) {
                return token;
            }
            if (this.cache.get(resource) !== cached) {
                return this.getToken(scopes, options);
            }
        }
        const fetching = this.fetch(resource, options);
        this.cache.set(resource, fetching);
        fetching.catch(() => {
            if (this.cache.get(resource) === fetching) {
                this.cache.delete(resource);
            }
        });
        return fetching;
    }

    private async fetch(resource: string, options?: GetTokenOptions): Promise<AccessToken> {
        const url = new URL(this.options.endpoint);
        url.searchParams.set('api-version', '2019-08-01');
        url.searchParams.set('resource', resource);
        if (this.options.clientId) {
            url.searchParams.set('client_id', this.options.clientId);
        }
        const request = createPipelineRequest({
            url: url.toString(),
            method: 'GET',
            headers: createHttpHeaders({ 'X-IDENTITY-HEADER': this.options.secret, accept: 'application/json' }),
            // The endpoint is http://localhost on App Service.
            allowInsecureConnection: url.protocol === 'http:',
            timeout: 30_000,
            ...(options?.abortSignal ? { abortSignal: options.abortSignal } : {}),
        });
        const response = await this.pipeline.sendRequest(this.options.httpClient ?? sharedHttpClient(), request);
        const body = parseJson(response.bodyAsText);
        if (response.status !== 200) {
            const reason = typeof body?.error_description === 'string' ? body.error_description : response.bodyAsText;
            const message = `The managed identity endpoint refused a token for ${resource}: HTTP ${response.status} ${reason ?? ''}`;
            // The pipeline already retried 429 and 5xx; what is left of them may still pass later, a 400 never will.
            throw response.status === 429 || response.status >= 500
                ? new TransientError(message.trim())
                : new PermanentError(message.trim());
        }
        const token = body?.access_token;
        const expiresOn = Number(body?.expires_on);
        if (typeof token !== 'string' || token === '' || !Number.isFinite(expiresOn)) {
            throw new PermanentError(`The managed identity endpoint sent no token for ${resource}`);
        }
        // expires_on is in seconds since the epoch (a number or a numeric string, depending on the platform).
        return { token, expiresOnTimestamp: expiresOn * 1000, tokenType: 'Bearer' };
    }
}

/** `https://management.azure.com/.default` → `https://management.azure.com` (the endpoint takes a resource, not a scope). */
export function resourceOf(scopes: string | string[]): string {
    const scope = Array.isArray(scopes) ? scopes[0] : scopes;
    if (!scope) {
        throw new PermanentError('A token was asked for without a scope');
    }
    return scope.endsWith('/.default') ? scope.slice(0, -'/.default'.length) : scope;
}

function parseJson(text: string | null | undefined): Record<string, unknown> | undefined {
    try {
        const value: unknown = JSON.parse(text ?? '');
        return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
    } catch {
        return undefined;
    }
}

let sharedClient: HttpClient | undefined;
/** One keep-alive connection pool for the identity endpoint, whatever the number of credentials. */
function sharedHttpClient(): HttpClient {
    sharedClient ??= createDefaultHttpClient();
    return sharedClient;
}
