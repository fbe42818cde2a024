import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { genesisHash, type AuditEntry, type AuditInput } from '../../src/domain/audit';
import { TransientError } from '../../src/domain/errors';
import { auditRowKey, hashAuditEntry, TableAuditLog, verifyChain } from '../../src/storage/auditLog';
import { FaultyStorage } from '../emulators/faultyStorage';
import { azuriteConnectionString, azuriteTable, lazyTable } from './azuriteTable';

/**
 * The audit log against the real Azurite: appends chain by hash per request, concurrent appends each get their own
 * place (409 on a taken sequence), and an edit, a delete or a reorder made directly in the table is found by
 * `verifyChain`.
 */

const { table } = azuriteTable('aud');

interface AuditRow {
    partitionKey: string;
    rowKey: string;
    entry: string;
    action: string;
    at: string;
}

function newRequestId(): string {
    return randomBytes(16).toString('base64url');
}

function input(requestId: string, n: number): AuditInput {
    return {
        requestId,
        action: n === 1 ? 'requested' : 'card-posted',
        actor: { kind: 'system', name: 'pec-gate' },
        correlationId: `corr-${requestId}`,
        before: n === 1 ? undefined : { status: 'pending', n: n - 1 },
        after: { status: 'pending', n },
        text: `step ${n}`,
        detail: `detail ${n}`,
    };
}

async function appendMany(log: TableAuditLog, requestId: string, count: number): Promise<AuditEntry[]> {
    const entries: AuditEntry[] = [];
    for (let n = 1; n <= count; n++) {
        entries.push(await log.append(input(requestId, n)));
    }
    return entries;
}

async function client(): Promise<TableClient> {
    return table();
}

async function readRow(requestId: string, seq: number): Promise<AuditRow> {
    return (await client()).getEntity<AuditRow>(requestId, auditRowKey(requestId, seq));
}

async function writeRow(row: AuditRow): Promise<void> {
    const { partitionKey, rowKey: key, entry, action, at } = row;
    await (await client()).updateEntity<AuditRow>({ partitionKey, rowKey: key, entry, action, at }, 'Replace');
}

describe('TableAuditLog on Azurite', () => {
    const log = new TableAuditLog(table);

    it('numbers appends 1..n and chains them from the genesis hash', async () => {
        const requestId = newRequestId();
        const appended = await appendMany(log, requestId, 4);
        expect(appended.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(appended[0]!.prevHash).toBe(genesisHash);
        for (let i = 1; i < appended.length; i++) {
            expect(appended[i]!.prevHash).toBe(appended[i - 1]!.hash);
        }
        for (const entry of appended) {
            const { hash, ...rest } = entry;
            expect(hash).toMatch(/^[0-9a-f]{64}$/);
            expect(hashAuditEntry(rest)).toBe(hash);
        }

        const listed = await log.list(requestId);
        expect(listed).toEqual(appended);
        expect(verifyChain(listed)).toEqual([]);
        expect(listed[2]).toMatchObject({ action: 'card-posted', text: 'step 3', after: { status: 'pending', n: 3 } });
    });

    it('keeps the chain intact for 8 concurrent appends to one request', async () => {
        const requestId = newRequestId();
        const appended = await Promise.all(Array.from({ length: 8 }, (_, i) => log.append(input(requestId, i + 1))));
        expect(appended.map((e) => e.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

        const listed = await log.list(requestId);
        expect(listed.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(new Set(listed.map((e) => e.text))).toEqual(new Set(appended.map((e) => e.text)));
        expect(verifyChain(listed)).toEqual([]);
    });

    it("keeps requests' chains apart", async () => {
        const a = newRequestId();
        const b = newRequestId();
        await Promise.all([appendMany(log, a, 3), appendMany(log, b, 2)]);
        await log.append(input(a, 4));

        const listedA = await log.list(a);
        const listedB = await log.list(b);
        expect(listedA.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(listedB.map((e) => e.seq)).toEqual([1, 2]);
        expect(listedA.every((e) => e.requestId === a)).toBe(true);
        expect(listedB.every((e) => e.requestId === b)).toBe(true);
        expect(listedB[0]!.prevHash).toBe(genesisHash);
        expect(verifyChain(listedA)).toEqual([]);
        expect(verifyChain(listedB)).toEqual([]);
        expect(await log.list(newRequestId())).toEqual([]);
    });

    it('reads back what it returned when before/after hold values JSON changes (a Date)', async () => {
        const requestId = newRequestId();
        const entry = await log.append({
            requestId,
            action: 'decided',
            actor: { kind: 'approver', id: 'o-1', name: 'Ann' },
            correlationId: 'c',
            after: { status: 'decided', decidedAt: new Date('2026-11-21T10:05:00Z') },
        });
        const listed = await log.list(requestId);
        expect(listed).toEqual([entry]);
        expect(verifyChain(listed)).toEqual([]);
    });

    describe('tampering directly in the table', () => {
        it('finds an edited entry', async () => {
            const requestId = newRequestId();
            await appendMany(log, requestId, 4);
            const row = await readRow(requestId, 2);
            const edited = { ...(JSON.parse(row.entry) as AuditEntry), text: 'approved by the CEO' };
            await writeRow({ ...row, entry: JSON.stringify(edited) });

            const problems = verifyChain(await log.list(requestId));
            expect(problems).toHaveLength(1);
            expect(problems[0]).toMatch(/entry 2: content does not match its hash/);
        });

        it('finds an edited entry whose hash was recomputed, at the entry after it', async () => {
            const requestId = newRequestId();
            await appendMany(log, requestId, 4);
            const row = await readRow(requestId, 2);
            const { hash: _old, ...rest } = JSON.parse(row.entry) as AuditEntry;
            const forged = { ...rest, text: 'approved by the CEO' };
            await writeRow({ ...row, entry: JSON.stringify({ ...forged, hash: hashAuditEntry(forged) }) });

            const problems = verifyChain(await log.list(requestId));
            expect(problems).toEqual([expect.stringMatching(/entry 3: does not follow the entry before it/)]);
        });

        it('finds a deleted middle entry', async () => {
            const requestId = newRequestId();
            await appendMany(log, requestId, 4);
            await (await client()).deleteEntity(requestId, auditRowKey(requestId, 2));

            const listed = await log.list(requestId);
            expect(listed.map((e) => e.seq)).toEqual([1, 3, 4]);
            const problems = verifyChain(listed);
            expect(problems.length).toBeGreaterThan(0);
            expect(problems.join('\n')).toMatch(/sequence 3 \(an entry is missing or out of order\)/);
            expect(problems.join('\n')).toMatch(/entry 3: does not follow the entry before it/);
        });

        it('finds two entries whose content was swapped (reordered)', async () => {
            const requestId = newRequestId();
            await appendMany(log, requestId, 4);
            const second = await readRow(requestId, 2);
            const third = await readRow(requestId, 3);
            await writeRow({ ...second, entry: third.entry, action: third.action, at: third.at });
            await writeRow({ ...third, entry: second.entry, action: second.action, at: second.at });

            const problems = verifyChain(await log.list(requestId));
            expect(problems.join('\n')).toMatch(/entry 2: sequence 3 \(an entry is missing or out of order\)/);
            expect(problems.join('\n')).toMatch(/entry 3: does not follow the entry before it/);
        });

        it('leaves other requests verifiable', async () => {
            const tampered = newRequestId();
            const intact = newRequestId();
            await Promise.all([appendMany(log, tampered, 3), appendMany(log, intact, 3)]);
            await (await client()).deleteEntity(tampered, auditRowKey(tampered, 1));

            expect(verifyChain(await log.list(tampered))).not.toEqual([]);
            expect(verifyChain(await log.list(intact))).toEqual([]);
        });
    });
});

describe('TableAuditLog when storage fails (through a fault-injecting proxy)', () => {
    let proxy: FaultyStorage;
    let log: TableAuditLog;
    const name = `audlost${randomBytes(6).toString('hex')}`;

    beforeAll(async () => {
        proxy = await FaultyStorage.start(azuriteConnectionString());
        log = new TableAuditLog(
            lazyTable(name, {
                connectionString: proxy.connectionString,
                timeoutMs: 300,
                maxRetries: 2,
                retryDelayInMs: 10,
            }),
        );
        await log.list(newRequestId()); // creates the table before any fault is queued
    });
    afterAll(() => proxy.close());
    afterEach(() => proxy.faults.clear());

    it('appends a step once when its insert went through unanswered (the retry meets its own entry)', async () => {
        const requestId = newRequestId();
        await log.append(input(requestId, 1));
        proxy.faults.add({ kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 }, { method: 'POST' });

        const entry = await log.append(input(requestId, 2));

        const listed = await log.list(requestId);
        // Not the same step again as entry 3.
        expect(listed.map((e) => e.seq)).toEqual([1, 2]);
        expect(listed[1]).toEqual(entry);
        expect(verifyChain(listed)).toEqual([]);
    });

    it('reports a throttled read of the trail as transient, so the caller retries', async () => {
        proxy.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { times: 3, method: 'GET' });
        await expect(log.append(input(newRequestId(), 1))).rejects.toBeInstanceOf(TransientError);
    });
});

describe('TableAuditLog without repeated reads', () => {
    it('writes the first entry of a new trail, and each next one of its own, without reading the trail', async () => {
        const log = new TableAuditLog(table);
        const reads = jest.spyOn(log, 'list');
        const id = newRequestId();
        await log.append(input(id, 1), { first: true });
        await log.append(input(id, 2));
        await log.append(input(id, 3));
        expect(reads).not.toHaveBeenCalled();
        const trail = await log.list(id);
        expect(trail.map((e) => e.seq)).toEqual([1, 2, 3]);
        expect(verifyChain(trail)).toEqual([]);
    });

    it('reads the trail when another writer moved it on, and when a "first" entry is not the first', async () => {
        const here = new TableAuditLog(table);
        const elsewhere = new TableAuditLog(table);
        const id = newRequestId();
        await here.append(input(id, 1), { first: true });
        await elsewhere.append(input(id, 2));
        // `here` still takes entry 1 for the last: its insert of 2 meets the other's entry, and it reads.
        const third = await here.append(input(id, 3));
        expect(third.seq).toBe(3);
        const wrongHint = await new TableAuditLog(table).append(input(id, 4), { first: true });
        expect(wrongHint.seq).toBe(4);
        const trail = await here.list(id);
        expect(trail.map((e) => e.text)).toEqual(['step 1', 'step 2', 'step 3', 'step 4']);
        expect(verifyChain(trail)).toEqual([]);
    });
});
