import type { TokenCredential } from '@azure/core-auth';
import type { CommonClientOptions } from '@azure/core-client';
import type { TableClient } from '@azure/data-tables';
import { sharedTimeoutHttpClient } from '../http/timeout';
import type { StorageSettings } from '../config';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import { withoutFormData } from '../http/pipeline';

/**
 * Table clients for a connection string (Azurite, or a key where policy still allows one) or for identity-based
 * access. The table is created once per process, on first use.
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
    try {
        await client.createTable();
    } catch (err) {
        // Every caller's first storage call goes through here: a throttle or an outage must read as transient, so
        // that the trigger retries it instead of taking it for a permanent failure (an apply would be marked failed).
        const e = ensureErrorType(err);
        throw isTransientStatus(statusCodeOf(err))
            ? new TransientError(`Storage: could not open table ${table}: ${e.message}`, { cause: e })
            : e;
    }
    return client;
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
