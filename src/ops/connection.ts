import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { TokenCredential } from '@azure/core-auth';
import type { TableClient } from '@azure/data-tables';
import type { StorageSettings } from '../config';
import { ConfigError, ensureErrorType, statusCodeOf } from '../domain/errors';
import type { AuditLog, AuditQueries } from '../storage/auditLog';
import { TableAuditLog } from '../storage/auditLog';
import { BlobAuditAnchors, type AuditAnchors } from '../storage/auditAnchor';
import type { RequestQueries, RequestStore } from '../storage/requestStore';
import { TableRequestStore } from '../storage/requestStore';
import { lazy } from '../storage/tables';

/**
 * How the ops CLI reaches the app's storage, from the app's own settings. The read-only commands need nothing but the
 * storage settings, so they do not go through `loadConfig`, which insists on every setting of the app (Teams, Graph,
 * ARM...). `readStorage` in config.ts is private, so its rules are repeated here, narrowly.
 */

export type Settings = Readonly<Record<string, string | undefined>>;

/** What the read-only commands use: reads by id and the operators' queries, nothing that writes. */
export interface OpsStores {
    requests: Pick<RequestStore, 'get'> & RequestQueries;
    audit: Pick<AuditLog, 'list'> & AuditQueries;
    /** The audit anchors (read only); undefined when the settings name no blob endpoint. */
    anchors?: Pick<AuditAnchors, 'heads' | 'listRequestIds'>;
}

export interface StorageTarget {
    storage: StorageSettings;
    requestsTable: string;
    auditTable: string;
    /** AUDIT_ANCHOR_CONTAINER, in the same account. */
    anchorContainer: string;
    /** Where the tables are, for the operator's eyes: an endpoint or account, never a key. */
    description: string;
}

/**
 * The environment, with `local.settings.json`'s `Values` filling in what it leaves unset or empty: what `func start`
 * gives the app, so the CLI next to it reads the same storage.
 */
export function mergeSettings(
    env: NodeJS.ProcessEnv,
    local: Readonly<Record<string, string>> | undefined,
): { settings: Settings; fromFile: ReadonlySet<string> } {
    const settings: Record<string, string | undefined> = { ...env };
    const fromFile = new Set<string>();
    for (const [key, value] of Object.entries(local ?? {})) {
        if ((settings[key] ?? '').trim() === '' && value.trim() !== '') {
            settings[key] = value;
            fromFile.add(key);
        }
    }
    return { settings, fromFile };
}

/** The `Values` of `local.settings.json` in `dir`, or undefined when there is no such file. */
export function readLocalSettings(dir: string): Record<string, string> | undefined {
    const file = path.join(dir, 'local.settings.json');
    let text: string;
    try {
        text = readFileSync(file, 'utf8');
    } catch (err) {
        if ((err as { code?: unknown }).code === 'ENOENT') {
            return undefined;
        }
        throw new ConfigError(`${file}: could not be read: ${ensureErrorType(err).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch (err) {
        throw new ConfigError(`${file}: not valid JSON: ${ensureErrorType(err).message}`, { cause: err });
    }
    const values = (parsed as { Values?: unknown } | null)?.Values;
    if (values === undefined) {
        return {};
    }
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
        throw new ConfigError(`${file}: "Values" must be an object of setting names and values`);
    }
    // The host passes every value as a string; anything else is ignored the way it would be there.
    return Object.fromEntries(
        Object.entries(values).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
}

const tableNamePattern = /^[A-Za-z][A-Za-z0-9]{2,62}$/;

/** The storage part of the app's settings, with config.ts's rules and defaults; names every bad setting at once. */
export function readStorageTarget(settings: Settings, fromFile: ReadonlySet<string> = new Set()): StorageTarget {
    const problems: string[] = [];
    const source = (key: string) => (fromFile.has(key) ? ' (local.settings.json)' : '');
    const table = (key: string, fallback: string) => {
        const value = settings[key]?.trim() || fallback;
        if (!tableNamePattern.test(value)) {
            problems.push(`${key}: expected a table name: 3-63 letters and digits, starting with a letter`);
        }
        return value;
    };
    const requestsTable = table('REQUESTS_TABLE', 'pecrequests');
    const auditTable = table('AUDIT_TABLE', 'pecaudit');

    let storage: StorageSettings = {};
    let where = '';
    const connectionString = settings.AzureWebJobsStorage?.trim();
    const account = settings.AzureWebJobsStorage__accountName?.trim();
    const tableServiceUri = settings.AzureWebJobsStorage__tableServiceUri?.trim();
    if (connectionString) {
        if (
            connectionString !== 'UseDevelopmentStorage=true' &&
            !/AccountName=|TableEndpoint=/i.test(connectionString)
        ) {
            problems.push(
                'AzureWebJobsStorage: expected a storage connection string (or UseDevelopmentStorage=true for Azurite)',
            );
        }
        storage = { connectionString };
        where = `${describeConnectionString(connectionString)}, AzureWebJobsStorage${source('AzureWebJobsStorage')}`;
    } else if (account || tableServiceUri) {
        if (account && !/^[a-z0-9]{3,24}$/.test(account)) {
            problems.push(
                'AzureWebJobsStorage__accountName: expected a storage account name (3-24 lower-case letters and digits)',
            );
        }
        // The table and blob endpoints matter here (the trails and their anchors); the queue is the app's business.
        const uri = tableServiceUri || `https://${account}.table.core.windows.net`;
        const blobUri =
            settings.AzureWebJobsStorage__blobServiceUri?.trim() ||
            (account ? `https://${account}.blob.core.windows.net` : undefined);
        storage = { tableServiceUri: uri, ...(blobUri ? { blobServiceUri: blobUri } : {}) };
        where = `${uri}, signed in with DefaultAzureCredential (your az login)`;
    } else {
        problems.push(
            'AzureWebJobsStorage: required: a connection string (UseDevelopmentStorage=true for Azurite), or ' +
                'AzureWebJobsStorage__accountName for identity-based access; from the environment or local.settings.json',
        );
    }
    if (problems.length > 0) {
        throw new ConfigError(`Invalid settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    }
    const anchorContainer = settings.AUDIT_ANCHOR_CONTAINER?.trim() || 'pecauditanchors';
    return {
        storage,
        requestsTable,
        auditTable,
        anchorContainer,
        description: `tables ${requestsTable} and ${auditTable} at ${where}`,
    };
}

/** A connection string named by its endpoint or account; the key never leaves this function. */
function describeConnectionString(connectionString: string): string {
    if (/^UseDevelopmentStorage=true$/i.test(connectionString)) {
        return 'Azurite (UseDevelopmentStorage=true)';
    }
    const endpoint = /(?:^|;)\s*TableEndpoint=([^;]+)/i.exec(connectionString)?.[1];
    const account = /(?:^|;)\s*AccountName=([^;]+)/i.exec(connectionString)?.[1];
    return endpoint ? endpoint.trim() : `account ${account?.trim() ?? '?'}`;
}

/**
 * The developer's own sign-in for identity-based storage: DefaultAzureCredential finds an `az login` (or azd,
 * PowerShell, a managed identity where the CLI runs in Azure). Loaded only when a token is first needed.
 */
export function developerCredential(settings: Settings): TokenCredential {
    const authorityHost = settings.AZURE_AUTHORITY_HOST?.trim();
    const load = lazy(async () => {
        const { DefaultAzureCredential } = await import('@azure/identity');
        return new DefaultAzureCredential(authorityHost ? { authorityHost } : {});
    });
    return { getToken: async (scopes, options) => (await load()).getToken(scopes, options) };
}

/**
 * The request store and audit log over existing tables, for reading. Unlike the app's `openTable`, nothing is created:
 * an operator with a read-only role (Storage Table Data Reader) cannot create tables, and a missing table means the
 * settings point at the wrong place, which is worth saying rather than quietly listing nothing.
 */
export function openStores(target: StorageTarget, credential: () => TokenCredential): OpsStores {
    return {
        requests: new TableRequestStore(lazy(() => openExistingTable(target, target.requestsTable, credential))),
        audit: new TableAuditLog(lazy(() => openExistingTable(target, target.auditTable, credential))),
        ...(target.storage.connectionString || target.storage.blobServiceUri
            ? { anchors: new BlobAuditAnchors(target.storage, target.anchorContainer, credential) }
            : {}),
    };
}

async function openExistingTable(
    target: StorageTarget,
    name: string,
    credential: () => TokenCredential,
): Promise<TableClient> {
    const { TableClient } = await import('@azure/data-tables');
    const { connectionString, tableServiceUri } = target.storage;
    const client = connectionString
        ? TableClient.fromConnectionString(connectionString, name, {
              // Azurite speaks http; a real account's connection string says https and is unaffected.
              allowInsecureConnection: /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;/i.test(
                  connectionString,
              ),
          })
        : new TableClient(tableServiceUri ?? '', name, credential());
    try {
        // One entity at most: proves the table exists and that the identity may read it, before any real query.
        await client
            .listEntities({ queryOptions: { select: ['PartitionKey'] } })
            .byPage({ maxPageSize: 1 })
            .next();
    } catch (err) {
        throw storageError(err, name, target.description);
    }
    return client;
}

/** A storage failure explained in the operator's terms: which table, where, and what to check. */
export function storageError(err: unknown, table: string, where: string): Error {
    const e = ensureErrorType(err);
    const status = statusCodeOf(err);
    if (status === 404) {
        return new ConfigError(
            `Table ${table} does not exist (${where}). Check AzureWebJobsStorage and REQUESTS_TABLE/AUDIT_TABLE; ` +
                'the app creates its tables when it first writes.',
            { cause: e },
        );
    }
    if (status === 403) {
        return new ConfigError(
            `Not allowed to read table ${table} (${where}): your identity needs the "Storage Table Data Reader" role ` +
                `on the storage account (resend also needs "Storage Table Data Contributor"). ${firstLine(e.message)}`,
            { cause: e },
        );
    }
    if (e.name === 'CredentialUnavailableError' || e.name === 'AuthenticationError') {
        return new ConfigError(`Could not sign in to reach ${where}: run \`az login\` first. ${firstLine(e.message)}`, {
            cause: e,
        });
    }
    return e;
}

function firstLine(text: string): string {
    return text.split('\n')[0]?.slice(0, 300) ?? '';
}
