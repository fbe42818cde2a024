import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main, usage } from '../../scripts/pec';
import { ConfigError } from '../../src/domain/errors';
import { mergeSettings, readLocalSettings, readStorageTarget } from '../../src/ops/connection';
import { parseSince } from '../../src/ops/output';
import { azuriteConnectionString } from '../storage/azuriteTable';
import { auditRowKey } from '../../src/storage/auditLog';
import { requestKeys } from '../../src/storage/requestStore';
import { memoryOutput, opsTables, seedRequest } from './helpers';

/**
 * The CLI's argv and settings handling: usage and exit codes, and the storage settings read the way the app reads
 * them (the environment first, then local.settings.json's Values), without the app's other settings.
 */

describe('pec (argv)', () => {
    it.each([[['--help']], [['-h']], [[]], [['list', '--help']]])('prints the usage for %j, exit 2', async (argv) => {
        const output = memoryOutput();
        expect(await main(argv, output, { env: {} })).toBe(2);
        expect(output.stdout).toEqual([usage]);
    });

    it.each([
        [['frobnicate'], /unknown command "frobnicate"/],
        [['list', '--everything'], /Unknown option '--everything'/],
        [['list', 'extra'], /unexpected argument "extra"/],
        [['show'], /a request id is needed/],
        [['show', 'a', 'b'], /one request id, not 2 arguments/],
        [['audit'], /audit needs a request id, verify or export/],
        [['list', '--since', 'last tuesday'], /--since "last tuesday": expected a duration/],
        [
            ['list', '--kind', 'keyvault'],
            /--kind "keyvault": expected resource kinds among postgres-single, .*key-vault/,
        ],
        [['audit', 'export', '--since', '2026-13-45'], /--since "2026-13-45"/],
    ])('refuses %j with the usage on stderr, exit 2', async (argv, message) => {
        const output = memoryOutput();
        expect(await main(argv, output, { env: {} })).toBe(2);
        expect(output.stdout).toEqual([]);
        expect(output.stderr[0]).toMatch(message);
        expect(output.stderr.at(-1)).toBe(usage);
    });

    it('takes a request id that starts with "-" as the id, not as an option (base64url ids do, one in 64)', async () => {
        const id = `-${'Q'.repeat(21)}`;
        for (const argv of [
            ['show', id],
            ['show', '--json', id],
            ['show', '--', id],
        ]) {
            const output = memoryOutput();
            // Not a usage error (2): the id is read, and the missing settings are what stops it (1).
            expect(await main(argv, output, { env: {} })).toBe(1);
            expect(output.stderr.join('\n')).not.toMatch(/Unknown option/);
        }
    });

    it('reads durations and dates for --since', () => {
        const now = new Date('2026-11-21T12:00:00Z');
        expect(parseSince('7d', now)).toEqual(new Date('2026-11-14T12:00:00Z'));
        expect(parseSince('12h', now)).toEqual(new Date('2026-11-21T00:00:00Z'));
        expect(parseSince('30m', now)).toEqual(new Date('2026-11-21T11:30:00Z'));
        expect(parseSince('2w', now)).toEqual(new Date('2026-11-07T12:00:00Z'));
        expect(parseSince('2026-11-01', now)).toEqual(new Date('2026-11-01T00:00:00Z'));
        expect(parseSince('2026-11-01T08:00', now)).toEqual(new Date('2026-11-01T08:00:00Z'));
        expect(parseSince('2026-11-01T08:00:00+01:00', now)).toEqual(new Date('2026-11-01T07:00:00Z'));
        expect(parseSince('yesterday', now)).toBeUndefined();
        expect(parseSince('7 days', now)).toBeUndefined();
    });
});

describe('pec (settings)', () => {
    const t = opsTables();
    let dir: string;
    beforeAll(async () => {
        await seedRequest(t);
        dir = mkdtempSync(path.join(tmpdir(), 'pec-cli-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const env = () => ({
        AzureWebJobsStorage: azuriteConnectionString(),
        REQUESTS_TABLE: t.requestsTable,
        AUDIT_TABLE: t.auditTable,
    });

    it('lists with nothing but the storage settings, and names where it looked without the account key', async () => {
        const output = memoryOutput();
        expect(await main(['list'], output, { env: env(), cwd: dir })).toBe(0);
        expect(output.stdout.at(-1)).toMatch(/^1 request: 1 pending/);
        const table = /TableEndpoint=([^;]+)/.exec(azuriteConnectionString())?.[1];
        expect(output.stderr).toEqual([
            `# tables ${t.requestsTable} and ${t.auditTable} at ${table}, AzureWebJobsStorage`,
        ]);
        expect(output.stderr.join('')).not.toContain('AccountKey');
    });

    it('takes what the environment leaves unset from local.settings.json, as func start does', async () => {
        const local = mkdtempSync(path.join(tmpdir(), 'pec-local-'));
        try {
            writeFileSync(
                path.join(local, 'local.settings.json'),
                JSON.stringify({ IsEncrypted: false, Values: { ...env(), REQUESTS_TABLE: 'ignoredBecauseEnvWins' } }),
            );
            const output = memoryOutput();
            expect(
                await main(['list', '--json'], output, { env: { REQUESTS_TABLE: t.requestsTable }, cwd: local }),
            ).toBe(0);
            expect(JSON.parse(output.text())).toHaveLength(1);
            expect(output.stderr[0]).toMatch(/AzureWebJobsStorage \(local\.settings\.json\)$/);
        } finally {
            rmSync(local, { recursive: true, force: true });
        }
    });

    it('says which table is missing rather than listing nothing, exit 1', async () => {
        const output = memoryOutput();
        expect(await main(['list'], output, { env: { ...env(), REQUESTS_TABLE: 'nosuchtable' }, cwd: dir })).toBe(1);
        expect(output.stderr.at(-1)).toMatch(/^Table nosuchtable does not exist \(tables nosuchtable and /);
    });

    it('names the missing storage setting, exit 1', async () => {
        const output = memoryOutput();
        expect(await main(['audit', 'verify'], output, { env: {}, cwd: dir })).toBe(1);
        expect(output.stderr.join('\n')).toMatch(/Invalid settings:\n {2}- AzureWebJobsStorage: required/);
    });

    it('runs resend only with the full settings, naming what is missing', async () => {
        const output = memoryOutput();
        expect(await main(['resend', 'A'.repeat(22)], output, { env: env(), cwd: dir })).toBe(1);
        expect(output.stderr.join('\n')).toMatch(/Invalid settings:[\s\S]*WATCHED_SUBSCRIPTION_IDS: required/);
    });

    it('reads identity-based storage from AzureWebJobsStorage__accountName', () => {
        const target = readStorageTarget({ AzureWebJobsStorage__accountName: 'pecgatestore', AUDIT_TABLE: 'audit2' });
        expect(target).toMatchObject({
            storage: { tableServiceUri: 'https://pecgatestore.table.core.windows.net' },
            requestsTable: 'pecrequests',
            auditTable: 'audit2',
        });
        expect(target.description).toMatch(/DefaultAzureCredential/);
        expect(() => readStorageTarget({ AzureWebJobsStorage__accountName: 'Bad_Name', REQUESTS_TABLE: '1x' })).toThrow(
            ConfigError,
        );
    });

    it('merges local.settings.json under the environment, and refuses a broken file', () => {
        const local = mkdtempSync(path.join(tmpdir(), 'pec-local-'));
        try {
            expect(readLocalSettings(local)).toBeUndefined();
            writeFileSync(
                path.join(local, 'local.settings.json'),
                JSON.stringify({ Values: { A: 'file', B: 'file', C: 1 } }),
            );
            const merged = mergeSettings({ A: 'env', B: '' }, readLocalSettings(local));
            expect(merged.settings).toMatchObject({ A: 'env', B: 'file' });
            expect(merged.settings.C).toBeUndefined();
            expect([...merged.fromFile]).toEqual(['B']);
            writeFileSync(path.join(local, 'local.settings.json'), '{ "Values": ');
            expect(() => readLocalSettings(local)).toThrow(/local\.settings\.json: not valid JSON/);
        } finally {
            rmSync(local, { recursive: true, force: true });
        }
    });
});

describe('pec (terminal)', () => {
    const t = opsTables();
    const env = () => ({
        AzureWebJobsStorage: azuriteConnectionString(),
        REQUESTS_TABLE: t.requestsTable,
        AUDIT_TABLE: t.auditTable,
    });

    it('prints no control character that came from the tables, whatever field it hides in', async () => {
        const request = await seedRequest(t);
        // Someone with the storage account's keys writes escape sequences where the commands print values: erase the
        // lines above, print a verdict, hide the rest (and OSC 52 would write the operator's clipboard).
        const forged =
            '\u001b[2K\u001b[1A\u001b[2K\r1 chain verified, 0 broken\u001b[8m\u001b]52;c;ZXZpbA==\u0007\u009b';
        const keys = requestKeys(request.id);
        const requests = await t.requestsClient();
        const row = await requests.getEntity<{ data: string }>(keys.partitionKey, keys.rowKey);
        const data = JSON.parse(row.data) as { status: string; facts: { serverKind: string } };
        data.status = `pending${forged}`;
        data.facts.serverKind = `postgres-flexible${forged}`;
        await requests.updateEntity({ ...keys, data: JSON.stringify(data) }, 'Merge');
        const audit = await t.auditClient();
        const entryRow = await audit.getEntity<{ entry: string }>(request.id, auditRowKey(request.id, 1));
        const entry = JSON.parse(entryRow.entry) as Record<string, unknown>;
        await audit.updateEntity(
            {
                partitionKey: request.id,
                rowKey: auditRowKey(request.id, 1),
                entry: JSON.stringify({ ...entry, seq: `1${forged}` }),
            },
            'Merge',
        );
        const listed = memoryOutput();
        await main(['list', '--all'], listed, { env: env() });
        const shown = memoryOutput();
        await main(['show', request.id], shown, { env: env() });
        const verified = memoryOutput();
        expect(await main(['audit', 'verify'], verified, { env: env() })).toBe(1);
        for (const output of [listed, shown, verified]) {
            const all = [...output.stdout, ...output.stderr].join('\n');
            const controls = [...all].filter((ch) => {
                const code = ch.charCodeAt(0);
                return (code < 0x20 && code !== 0x09 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f);
            });
            expect(controls).toEqual([]);
        }
        expect(verified.text()).toContain('BROKEN');
    });
});
