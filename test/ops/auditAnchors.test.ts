import { randomBytes } from 'node:crypto';
import * as diagnostics from 'node:diagnostics_channel';
import type { AuditEntry } from '../../src/domain/audit';
import { verifyCommand } from '../../src/ops/audit';
import type { ChainCheck } from '../../src/ops/chain';
import { anchorLagging, AnchoredAuditLog, BlobAuditAnchors, type AnchorHead } from '../../src/storage/auditAnchor';
import { hashAuditEntry, TableAuditLog, verifyChain } from '../../src/storage/auditLog';
import { requestKeys } from '../../src/storage/requestStore';
import { azuriteConnectionString, noCredential } from '../storage/azuriteTable';
import { auditRowKey, memoryOutput, opsTables, seedRequest } from './helpers';

/**
 * What the chain alone cannot show, shown by the anchors, against Azurite (tables and blobs). Each tampering below
 * leaves a chain that verifies on its own (every hash recomputed after the change, as a thief of the app's identity
 * can), and each is caught because the heads anchored when the entries were written no longer match. Azurite has no
 * immutability policy, so these tests check the app's side: that what was anchored is enough to catch each case. That
 * nobody can take the anchors back is the WORM policy's part, in Azure (see the README's Security model).
 */

const t = opsTables();

/** Rewrites the stored trail from `entries`, renumbered and rehashed in order, so that its chain verifies again. */
async function rechain(requestId: string, entries: readonly AuditEntry[]): Promise<void> {
    const client = await t.auditClient();
    let prev = '0'.repeat(64);
    for (const [i, entry] of entries.entries()) {
        const { hash: _old, ...rest } = entry;
        const unsigned = { ...rest, seq: i + 1, prevHash: prev };
        const hash = hashAuditEntry(unsigned);
        await client.upsertEntity(
            {
                partitionKey: requestId,
                rowKey: auditRowKey(requestId, unsigned.seq),
                entry: JSON.stringify({ ...unsigned, hash }),
                action: unsigned.action,
                at: unsigned.at,
            },
            'Replace',
        );
        prev = hash;
    }
}

/** The verdict on one request, from the whole verify run (undefined when its chain is not broken). */
async function checkOf(id: string): Promise<ChainCheck | undefined> {
    const output = memoryOutput();
    await verifyCommand(t.stores, { json: true }, output);
    const report = JSON.parse(output.text()) as { broken: ChainCheck[] };
    return report.broken.find((c) => c.requestId === id);
}

describe('pec audit verify against the anchors', () => {
    it('passes an untouched trail, every entry anchored, with no warning', async () => {
        const seeded = await seedRequest(t, { status: 'applied' });
        expect((await t.anchors.heads(seeded.id)).map((h) => h.seq)).toEqual([1, 2, 3, 4]);
        expect(await checkOf(seeded.id)).toBeUndefined();
        const output = memoryOutput();
        await verifyCommand(t.stores, { json: false }, output);
        expect(output.text()).not.toContain(seeded.id);
    });

    it('catches truncation: the last entries deleted, the rest of the chain intact', async () => {
        const seeded = await seedRequest(t, { status: 'applied' });
        const client = await t.auditClient();
        await client.deleteEntity(seeded.id, auditRowKey(seeded.id, 4));
        await client.deleteEntity(seeded.id, auditRowKey(seeded.id, 3));
        expect(verifyChain(await t.audit.list(seeded.id))).toEqual([]);

        const check = await checkOf(seeded.id);
        expect(check?.findings.map((f) => f.kind)).toEqual(['truncated']);
        expect(check?.findings[0]?.message).toMatch(
            /^the anchor vouches for 4 entries \(the last written .*\), the trail ends at entry 2: entries 3 to 4 were deleted$/,
        );
    });

    it('catches deletion: a whole trail and its request removed, which neither table can show', async () => {
        const seeded = await seedRequest(t, { status: 'applied' });
        const client = await t.auditClient();
        for (let seq = 1; seq <= 4; seq++) {
            await client.deleteEntity(seeded.id, auditRowKey(seeded.id, seq));
        }
        const keys = requestKeys(seeded.id);
        await (await t.requestsClient()).deleteEntity(keys.partitionKey, keys.rowKey);

        const check = await checkOf(seeded.id);
        expect(check?.findings.map((f) => f.kind)).toEqual(['missing-trail', 'truncated']);
    });

    it('catches reordering: two entries swapped, renumbered and every hash recomputed', async () => {
        const seeded = await seedRequest(t, { status: 'applied' });
        const [requested, posted, decided, applied] = await t.audit.list(seeded.id);
        await rechain(seeded.id, [requested!, decided!, posted!, applied!]);
        expect(verifyChain(await t.audit.list(seeded.id))).toEqual([]);

        const check = await checkOf(seeded.id);
        expect(check?.findings.map((f) => [f.kind, f.seq])).toEqual([
            ['anchor-mismatch', 2],
            ['anchor-mismatch', 3],
            ['anchor-mismatch', 4],
        ]);
    });

    it('catches rewriting: an entry changed and every hash after it recomputed', async () => {
        const seeded = await seedRequest(t, { status: 'applied' });
        const entries = await t.audit.list(seeded.id);
        const decided = entries[2]!;
        await rechain(seeded.id, [
            ...entries.slice(0, 2),
            { ...decided, actor: { ...decided.actor, name: 'Mallory' }, text: 'approved by the CEO' },
            entries[3]!,
        ]);
        expect(verifyChain(await t.audit.list(seeded.id))).toEqual([]);

        const check = await checkOf(seeded.id);
        expect(check?.findings.map((f) => [f.kind, f.seq])).toEqual([
            ['anchor-mismatch', 3],
            ['anchor-mismatch', 4],
        ]);
        expect(check?.findings[0]?.message).toMatch(/^entry 3 \(decided\) is not the entry anchored for it at /);
    });

    it('catches a forged head appended for a place already anchored', async () => {
        const seeded = await seedRequest(t);
        const [first] = await t.anchors.heads(seeded.id);
        await t.anchors.anchor({ ...first!, hash: 'f'.repeat(64) });
        expect((await checkOf(seeded.id))?.findings.map((f) => f.kind)).toEqual(['anchor-mismatch']);
    });
});

describe('an anchor write that fails', () => {
    it('loses no entry, is reported, warned about by verify, and anchored by the sweep’s pass with a digest', async () => {
        const seeded = await seedRequest(t);
        // Nothing listens on port 9: the anchor store is down, the table is not.
        const down = new BlobAuditAnchors(
            {
                connectionString:
                    'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;' +
                    'BlobEndpoint=http://127.0.0.1:9/devstoreaccount1',
                maxRetries: 1,
                retryDelayInMs: 1,
                timeoutMs: 2000,
            },
            t.anchorContainer,
            noCredential,
        );
        const failures: { head: AnchorHead; error: Error }[] = [];
        const log = new AnchoredAuditLog(new TableAuditLog(t.auditClient), down, (head, error) => {
            failures.push({ head, error });
        });
        const entry = await log.append({
            requestId: seeded.id,
            action: 'reminded',
            actor: { kind: 'system' },
            correlationId: seeded.correlationId,
        });
        expect(failures).toHaveLength(1);
        expect(failures[0]?.head).toEqual({ requestId: seeded.id, seq: 3, hash: entry.hash, at: entry.at });
        expect(failures[0]?.error.message).toMatch(/^Audit anchor: could not anchor heads\//);
        expect((await t.audit.list(seeded.id)).map((e) => e.action)).toEqual(['requested', 'card-posted', 'reminded']);

        // Not broken (only the chain vouches for entry 3), but named.
        expect(await checkOf(seeded.id)).toBeUndefined();
        const output = memoryOutput();
        await verifyCommand(t.stores, { json: false }, output);
        expect(output.stdout).toContain(
            `WARNING ${seeded.id}: entries 3 to 3 are not anchored yet: only the hash chain vouches for them`,
        );

        const now = new Date();
        const { anchored, digest } = await anchorLagging(t.audit, t.anchors, now);
        expect(anchored).toBeGreaterThanOrEqual(1);
        expect((await t.anchors.heads(seeded.id)).at(-1)).toMatchObject({ seq: 3, hash: entry.hash });
        expect(await t.anchors.digests(now.toISOString().slice(0, 10))).toContainEqual(digest);
        const after = memoryOutput();
        await verifyCommand(t.stores, { json: false }, after);
        expect(after.text()).not.toContain(`WARNING ${seeded.id}`);
        // Nothing lags now: a second pass anchors nothing more.
        expect((await anchorLagging(t.audit, t.anchors, now)).anchored).toBe(0);
    });
});

describe('the anchor blobs’ round trips', () => {
    /** Every blob call this process sends for `container` while `work` runs, as `METHOD status`. */
    async function blobCalls(container: string, work: () => Promise<void>): Promise<string[]> {
        const calls: string[] = [];
        const onResponse = (message: unknown): void => {
            const { request, response } = message as {
                request: { method: string; path: string };
                response: { statusCode: number };
            };
            if (request.path.includes(`/${container}`)) {
                calls.push(`${request.method} ${response.statusCode}`);
            }
        };
        diagnostics.subscribe('http.client.response.finish', onResponse);
        try {
            await work();
        } finally {
            diagnostics.unsubscribe('http.client.response.finish', onResponse);
        }
        return calls;
    }

    const head = (seq: number): AnchorHead => ({ requestId: 'rt1', seq, hash: String(seq).repeat(64), at: 'x' });

    it('a new chain’s first head costs a create and an append, a later head one append, and nothing is emptied', async () => {
        const container = `opsrt${randomBytes(6).toString('hex')}`;
        const anchors = new BlobAuditAnchors({ connectionString: azuriteConnectionString() }, container, noCredential);
        // A container that does not exist yet (locally; Bicep deploys it): storage says so, and only then is it created.
        expect(await blobCalls(container, () => anchors.anchor(head(1)))).toEqual([
            'PUT 404',
            'PUT 201',
            'PUT 201',
            'PUT 201',
        ]);
        expect(await blobCalls(container, () => anchors.anchor(head(2)))).toEqual(['PUT 201']);
        // The first head again (a retried step): the blob exists, so it is kept and the head is added to it.
        expect(await blobCalls(container, () => anchors.anchor(head(1)))).toEqual(['PUT 409', 'PUT 201']);
        expect((await anchors.heads('rt1')).map((h) => h.seq)).toEqual([1, 2, 1]);

        const another = { ...head(1), requestId: 'rt2' };
        expect(await blobCalls(container, () => anchors.anchor(another))).toEqual(['PUT 201', 'PUT 201']);
        expect(await anchors.heads('rt2')).toEqual([another]);
    });

    it('prepare() loads the blob client without a call to storage, and the first anchor then costs what it did', async () => {
        const container = `opsrt${randomBytes(6).toString('hex')}`;
        const anchors = new BlobAuditAnchors({ connectionString: azuriteConnectionString() }, container, noCredential);
        expect(
            await blobCalls(container, async () => {
                anchors.prepare();
                await new Promise((resolve) => setTimeout(resolve, 50));
            }),
        ).toEqual([]);
        expect(await blobCalls(container, () => anchors.anchor(head(1)))).toEqual([
            'PUT 404',
            'PUT 201',
            'PUT 201',
            'PUT 201',
        ]);
    });
});
