import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AuditEntry } from '../../src/domain/audit';
import { exportCommand, verifyCommand } from '../../src/ops/audit';
import type { ChainCheck } from '../../src/ops/chain';
import { hashAuditEntry, verifyChain } from '../../src/storage/auditLog';
import { main } from '../../scripts/pec';
import { azuriteConnectionString } from '../storage/azuriteTable';
import { memoryOutput, opsTables, auditRowKey, seedRequest, type OpsTables } from './helpers';

/**
 * `pec audit verify` and `pec audit export` against Azurite, the tampering done directly in the table through a
 * TableClient, the way someone with write access to the storage account could.
 */

interface AuditRow {
    partitionKey: string;
    rowKey: string;
    entry: string;
    action: string;
    at: string;
}

async function readRow(t: OpsTables, requestId: string, seq: number): Promise<AuditRow> {
    return (await t.auditClient()).getEntity<AuditRow>(requestId, auditRowKey(requestId, seq));
}

async function replaceRow(t: OpsTables, row: AuditRow): Promise<void> {
    const { partitionKey, rowKey: key, entry, action, at } = row;
    await (await t.auditClient()).updateEntity<AuditRow>({ partitionKey, rowKey: key, entry, action, at }, 'Replace');
}

describe('pec audit verify', () => {
    it('verifies an untouched store: N chains verified, 0 broken, exit 0', async () => {
        const t = opsTables();
        await Promise.all([
            seedRequest(t),
            seedRequest(t, { status: 'applied' }),
            seedRequest(t, { status: 'failed' }),
        ]);
        const output = memoryOutput();
        expect(await verifyCommand(t.stores, { json: false }, output)).toBe(0);
        expect(output.stdout).toEqual(['3 chains verified, 0 broken']);
    });

    describe('with tampered trails', () => {
        const t = opsTables();
        const ids: Record<string, string> = {};
        let rewrittenAt = '';
        let wipedLastAt = '';

        beforeAll(async () => {
            const [edited, deleted, reordered, rewritten, wiped, intact] = await Promise.all([
                seedRequest(t, { status: 'applied' }),
                seedRequest(t, { status: 'applied' }),
                seedRequest(t, { status: 'applied' }),
                seedRequest(t, { status: 'applied' }),
                seedRequest(t, { status: 'applied' }),
                seedRequest(t, { status: 'applied' }),
            ]);
            Object.assign(ids, {
                edited: edited.id,
                deleted: deleted.id,
                reordered: reordered.id,
                rewritten: rewritten.id,
                wiped: wiped.id,
                intact: intact.id,
            });
            const client = await t.auditClient();

            // Edited: who approved, changed inside the stored entry.
            const decidedRow = await readRow(t, edited.id, 3);
            const forged = JSON.parse(decidedRow.entry) as AuditEntry;
            await replaceRow(t, {
                ...decidedRow,
                entry: JSON.stringify({ ...forged, actor: { ...forged.actor, name: 'Mallory' } }),
            });

            // Deleted: the decision's entry removed.
            await client.deleteEntity(deleted.id, auditRowKey(deleted.id, 3));

            // Reordered: two entries swap places (row keys), each keeping its own content.
            const second = await readRow(t, reordered.id, 2);
            const third = await readRow(t, reordered.id, 3);
            await replaceRow(t, { ...second, entry: third.entry, action: third.action, at: third.at });
            await replaceRow(t, { ...third, entry: second.entry, action: second.action, at: second.at });

            // Rewritten: an edit that recomputes the entry's own hash, so only the next entry's link gives it away.
            const row = await readRow(t, rewritten.id, 3);
            const { hash: _old, ...rest } = JSON.parse(row.entry) as AuditEntry;
            rewrittenAt = rest.at;
            const changed = { ...rest, text: 'approved by the CEO' };
            await replaceRow(t, { ...row, entry: JSON.stringify({ ...changed, hash: hashAuditEntry(changed) }) });

            // A whole trail deleted: no chain can show it, the request row can (and the anchors).
            wipedLastAt = (JSON.parse((await readRow(t, wiped.id, 4)).entry) as AuditEntry).at;
            for (let seq = 1; seq <= 4; seq++) {
                await client.deleteEntity(wiped.id, auditRowKey(wiped.id, seq));
            }
        });

        it('reports each broken chain with its request id and what is wrong, and exits 1', async () => {
            const output = memoryOutput();
            expect(await verifyCommand(t.stores, { json: false }, output)).toBe(1);
            const text = output.text();
            const block = (id: string | undefined) => {
                const lines = text.split('\n');
                const start = lines.findIndex((l) => l.startsWith(`BROKEN ${id} `));
                if (start < 0) {
                    return '';
                }
                const end = lines.findIndex((l, i) => i > start && !l.startsWith('  '));
                return lines.slice(start, end < 0 ? undefined : end).join('\n');
            };
            expect(block(ids.edited)).toBe(
                `BROKEN ${ids.edited} (4 entries)\n` +
                    '  edited: entry 3 (decided) was edited: its content does not match its hash',
            );
            expect(block(ids.deleted)).toBe(
                `BROKEN ${ids.deleted} (3 entries)\n` +
                    '  deleted: entry 3 is missing: deleted (entry 4 points at its hash)',
            );
            expect(block(ids.reordered)).toBe(
                `BROKEN ${ids.reordered} (4 entries)\n` +
                    '  reordered: entry 2 is stored after entry 3: the entries were reordered',
            );
            expect(block(ids.rewritten)).toBe(
                `BROKEN ${ids.rewritten} (4 entries)\n` +
                    '  rewritten: entry 3 (decided) was rewritten with a recomputed hash: entry 4 does not follow it\n' +
                    `  anchor-mismatch: entry 3 (decided) is not the entry anchored for it at ${rewrittenAt}: ` +
                    'it was rewritten, reordered or replaced after it was written',
            );
            expect(block(ids.wiped)).toBe(
                `BROKEN ${ids.wiped} (0 entries)\n` +
                    '  missing-trail: the request exists but has no audit entries: its trail was deleted, or never written\n' +
                    `  truncated: the anchor vouches for 4 entries (the last written ${wipedLastAt}), the trail ends at ` +
                    'entry 0: entries 1 to 4 were deleted',
            );
            expect(text).not.toContain(ids.intact);
            expect(output.stdout.at(-1)).toBe('1 chain verified, 5 broken');
        });

        it('gives the same verdicts as JSON, verifyChain’s own problems included', async () => {
            const output = memoryOutput();
            expect(await verifyCommand(t.stores, { json: true }, output)).toBe(1);
            const report = JSON.parse(output.text()) as { verified: number; broken: ChainCheck[] };
            expect(report.verified).toBe(1);
            const kinds = Object.fromEntries(report.broken.map((c) => [c.requestId, c.findings.map((f) => f.kind)]));
            expect(kinds).toEqual({
                [ids.edited!]: ['edited'],
                [ids.deleted!]: ['deleted'],
                [ids.reordered!]: ['reordered'],
                [ids.rewritten!]: ['rewritten', 'anchor-mismatch'],
                [ids.wiped!]: ['missing-trail', 'truncated'],
            });
            // The verdict agrees with verifyChain's, chain by chain.
            for (const check of report.broken.filter((c) => c.entries > 0)) {
                expect(check.problems).toEqual(verifyChain(await t.audit.list(check.requestId)));
                expect(check.problems.length).toBeGreaterThan(0);
            }
            expect(output.stderr).toContain('1 chain verified, 5 broken');
        });
    });
});

describe('pec audit export', () => {
    const t = opsTables();
    let requests: string[] = [];

    beforeAll(async () => {
        const seeded = await Promise.all([
            seedRequest(t, { status: 'applied', at: new Date('2026-01-10T10:00:00Z') }),
            seedRequest(t, { status: 'superseded' }),
            seedRequest(t),
        ]);
        requests = seeded.map((r) => r.id).sort();
    });

    function parseLines(text: string): AuditEntry[] {
        return text
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as AuditEntry);
    }

    it('writes one JSON line per entry, with its requestId, by request then sequence, each verifiable', async () => {
        const lines: string[] = [];
        const counts = await exportCommand(t.stores, {}, (line) => {
            lines.push(line);
        });
        expect(counts).toEqual({ entries: 4 + 3 + 2, requests: 3 });
        expect(lines.every((l) => !l.includes('\n'))).toBe(true);
        const entries = lines.map((l) => JSON.parse(l) as AuditEntry);
        expect(entries.map((e) => [e.requestId, e.seq])).toEqual(
            requests.flatMap((id) => {
                const n = entries.filter((e) => e.requestId === id).length;
                return Array.from({ length: n }, (_, i) => [id, i + 1]);
            }),
        );
        for (const id of requests) {
            expect(verifyChain(entries.filter((e) => e.requestId === id))).toEqual([]);
        }
    });

    it('writes to a file through the CLI, only entries since a date with --since', async () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'pec-export-'));
        try {
            const file = path.join(dir, 'audit.jsonl');
            const output = memoryOutput();
            const env = {
                AzureWebJobsStorage: azuriteConnectionString(),
                REQUESTS_TABLE: t.requestsTable,
                AUDIT_TABLE: t.auditTable,
                AUDIT_ANCHOR_CONTAINER: t.anchorContainer,
            };
            const code = await main(['audit', 'export', '--since', '2026-06-01', '--out', file], output, {
                env,
                cwd: dir,
            });
            expect(output.stderr.join('\n')).toMatch(/exported 5 entries of 2 requests to .*audit\.jsonl/);
            expect(code).toBe(0);
            const entries = parseLines(readFileSync(file, 'utf8'));
            expect(entries).toHaveLength(5);
            expect(entries.every((e) => e.at >= '2026-06-01')).toBe(true);
            expect(output.stdout).toEqual([]);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
