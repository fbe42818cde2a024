import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { genesisHash, type AuditEntry, type AuditInput } from '../../src/domain/audit';
import { hashAuditEntry, TableAuditLog, verifyChain } from '../../src/storage/auditLog';
import { azuriteTable } from './azuriteTable';

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

function rowKey(seq: number): string {
    return String(seq).padStart(10, '0');
}

async function client(): Promise<TableClient> {
    return table();
}

async function readRow(requestId: string, seq: number): Promise<AuditRow> {
    return (await client()).getEntity<AuditRow>(requestId, rowKey(seq));
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
            await (await client()).deleteEntity(requestId, rowKey(2));

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
            await (await client()).deleteEntity(tampered, rowKey(1));

            expect(verifyChain(await log.list(tampered))).not.toEqual([]);
            expect(verifyChain(await log.list(intact))).toEqual([]);
        });
    });
});
