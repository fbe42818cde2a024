import { randomBytes } from 'node:crypto';
import type { StorageSettings } from '../../src/config';
import { lazy, openTable } from '../../src/storage/tables';

/** The connection string of the Azurite that the Jest global setup started. */
export function azuriteConnectionString(): string {
    const value = process.env.AZURITE_CONNECTION_STRING;
    if (!value) {
        throw new Error('Azurite is not running: the jest globalSetup starts it');
    }
    return value;
}

/** For clients on a connection string, which never ask for a token. */
export function noCredential(): never {
    throw new Error('no credential needed');
}

/** A table opened lazily with a connection string (Azurite's, or a proxy's in front of it) and these settings. */
export function lazyTable(name: string, storage: StorageSettings = { connectionString: azuriteConnectionString() }) {
    return lazy(() => openTable(storage, name, noCredential));
}

/** A table of its own for one test file, opened lazily on Azurite with the connection string (no credential). */
export function azuriteTable(prefix: string) {
    const name = `${prefix}${randomBytes(6).toString('hex')}`;
    return { name, table: lazyTable(name) };
}
