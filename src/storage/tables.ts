import type { TokenCredential } from '@azure/core-auth';
import type { CommonClientOptions } from '@azure/core-client';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import type { TableClient } from '@azure/data-tables';
import { sharedTimeoutHttpClient } from '../http/timeout';
import type { StorageSettings } from '../config';
import { withoutFormData } from '../http/pipeline';

/** The scope the table, queue and blob clients ask their TokenCredential for (the SDKs' own default). */
export const storageTokenScope = 'https://storage.azure.com/.default';

/**
 * Table clients for a connection string (Azurite, or a key where policy still allows one) or for identity-based
 * access. The table is created the first time a request finds it missing (see createTableOnFirstUse).
 */
export async function openTable(
    storage: StorageSettings,
    table: string,
    credential: () => TokenCredential,
): Promise<TableClient> {
    const { TableClient } = await import('@azure/data-tables');
    const options = storageClientOptions(storage);
    const client = storage.connectionString
        ? TableClient.fromConnectionString(storage.connectionString, table, {
              ...options,
              // Azurite speaks http; a real account's connection string says https and is unaffected.
              allowInsecureConnection: /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;/i.test(
                  storage.connectionString,
              ),
          })
        : new TableClient(requireUri(storage.tableServiceUri), table, credential(), options);
    withoutFormData(client);
    // Inside the deserialization phase, where a 404 is still a response rather than the error thrown for it.
    client.pipeline.addPolicy(createTableOnFirstUse(client), { afterPhase: 'Deserialize' });
    return client;
}

/**
 * Creates the table when a request finds it missing (404 TableNotFound) and sends that request again. The table is
 * there from the first start on, so asking to create it whenever a process starts would put a storage round trip
 * (two, with the audit table) on every cold start for nothing. Concurrent requests that find it missing share one
 * creation; a creation that fails fails the request that needed it, with the storage error, as any call would.
 */
export function createTableOnFirstUse(client: Pick<TableClient, 'createTable'>): PipelinePolicy {
    let creating: Promise<void> | undefined;
    return {
        name: 'createTableOnFirstUse',
        async sendRequest(request, next) {
            const response = await next(request);
            if (response.status !== 404 || response.headers.get('x-ms-error-code') !== 'TableNotFound') {
                return response;
            }
            creating ??= client.createTable().finally(() => {
                creating = undefined;
            });
            await creating;
            return next(request);
        },
    };
}

/**
 * Every try bounded (a storage request that never answers would otherwise hold the invocation until the host kills
 * it), and the retries of 503 ServerBusy, 500 and timeouts on the app's own settings; Retry-After is honoured.
 */
function storageClientOptions(storage: StorageSettings): CommonClientOptions {
    return {
        httpClient: sharedTimeoutHttpClient(storage.timeoutMs),
        ...(storage.maxRetries === undefined
            ? {}
            : {
                  retryOptions: {
                      maxRetries: storage.maxRetries,
                      retryDelayInMs: storage.retryDelayInMs,
                      maxRetryDelayInMs: Math.max(
                          (storage.retryDelayInMs ?? 1000) * 16,
                          storage.retryDelayInMs ?? 1000,
                      ),
                  },
              }),
    };
}

function requireUri(uri: string | undefined): string {
    if (!uri) {
        throw new Error('AzureWebJobsStorage: no table service URI');
    }
    return uri;
}

/** Memoises an async factory, forgetting a failure so the next call tries again. */
export function lazy<T>(factory: () => Promise<T>): () => Promise<T> {
    let pending: Promise<T> | undefined;
    return () => {
        if (!pending) {
            pending = factory();
            pending.catch(() => {
                pending = undefined;
            });
        }
        return pending;
    };
}
