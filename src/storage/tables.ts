import type { TokenCredential } from '@azure/core-auth';
import type { TableClient } from '@azure/data-tables';
import type { StorageSettings } from '../config';

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
    const client = storage.connectionString
        ? TableClient.fromConnectionString(storage.connectionString, table, {
              // Azurite speaks http; a real account's connection string says https and is unaffected.
              allowInsecureConnection: /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;/i.test(
                  storage.connectionString,
              ),
          })
        : new TableClient(requireUri(storage.tableServiceUri), table, credential());
    await client.createTable();
    return client;
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
