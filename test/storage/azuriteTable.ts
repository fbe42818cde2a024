import { randomBytes } from 'node:crypto';
import { lazy, openTable } from '../../src/storage/tables';

/** The connection string of the Azurite that the Jest global setup started. */
export function azuriteConnectionString(): string {
    const value = process.env.AZURITE_CONNECTION_STRING;
    if (!value) {
        throw new Error('Azurite is not running: the jest globalSetup starts it');
    }
    return value;
}

/** A table of its own for one test file, opened lazily on Azurite with the connection string (no credential). */
export function azuriteTable(prefix: string) {
    const name = `${prefix}${randomBytes(6).toString('hex')}`;
    const table = lazy(() =>
        openTable({ connectionString: azuriteConnectionString() }, name, () => {
            throw new Error('no credential needed');
        }),
    );
    return { name, table };
}
