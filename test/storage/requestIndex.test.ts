import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { openRequest, transition, type ApprovalRequest } from '../../src/domain/request';
import {
    decodeCursor,
    encodeCursor,
    indexKeys,
    openPartition,
    TableRequestIndex,
    writeIndex,
    type IndexedRequest,
} from '../../src/storage/requestIndex';
import { TableRequestStore } from '../../src/storage/requestStore';
import { azuriteTable } from './azuriteTable';

/**
 * The dashboard's index against Azurite: written by the store's hook as requests change, paged newest first with
 * key-range queries, filtered by the service, and put back by the catch-up when rows are missing (an upgrade from a
 * version without it, or an index write that failed after its request's).
 */

const ours = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
const foreign = 'f0f0f0f0-dead-4bee-8f00-00000000f0f0';
const start = Date.parse('2026-09-25T08:00:00Z');

function newId(): string {
    return randomBytes(16).toString('base64url');
}

interface DraftOptions {
    at: Date;
    kind?: 'postgres-flexible' | 'mysql-flexible';
    server?: string;
    peSubscription?: string;
    trusted?: boolean;
    requesterUpn?: string;
}

function draft(o: DraftOptions): ApprovalRequest {
    const kind = o.kind ?? 'postgres-flexible';
    const provider = kind === 'postgres-flexible' ? 'Microsoft.DBforPostgreSQL' : 'Microsoft.DBforMySQL';
    const server = o.server ?? 'Pg-One';
    const suffix = randomBytes(4).toString('hex');
    const serverId = `/subscriptions/${ours}/resourceGroups/rg/providers/${provider}/flexibleServers/${server}`;
    const sub = o.peSubscription ?? ours;
    return openRequest({
        id: newId(),
        pecId: `${serverId}/privateEndpointConnections/pe-${suffix}`,
        facts: {
            serverKind: kind,
            serverId,
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Disabled',
            serverTags: {},
            pecName: `pe-${suffix}`,
            privateEndpointId: `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe`,
            privateEndpointSubscriptionId: sub,
            privateEndpointTrusted: o.trusted ?? sub === ours,
            requestMessage: '',
            approvedPecCount: 0,
            approvedUntrustedPecCount: 0,
        },
        requester: { upn: o.requesterUpn ?? 'dev@contoso.com', name: 'Dev' },
        correlationId: 'c',
        now: o.at,
    });
}

describe('request index', () => {
    const { table: requests } = azuriteTable('req');
    const { table } = azuriteTable('idx');
    const store = new TableRequestStore(requests, undefined, table);
    const index = new TableRequestIndex(table, requests);
    /** Oldest first, as written; across a month boundary. */
    const written: ApprovalRequest[] = [];

    beforeAll(async () => {
        // 130 requests, one an hour from 25 September, so the list crosses from September into October.
        for (let i = 0; i < 130; i++) {
            const at = new Date(start + i * 3_600_000);
            const request = draft({
                at,
                kind: i % 2 === 0 ? 'postgres-flexible' : 'mysql-flexible',
                server: i % 3 === 0 ? 'Pg-Three' : 'Pg-One',
                peSubscription: i % 5 === 0 ? foreign : ours,
                requesterUpn: i % 7 === 0 ? 'Partner.Person@fabrikam.example' : 'dev@contoso.com',
            });
            const { stored } = await store.createIfNone(request);
            written.push(stored.request);
        }
        // Decide a few: approve 0..9 (applied), reject 10..14.
        for (let i = 0; i < 15; i++) {
            const stored = (await store.get(written[i]!.id))!;
            const at = new Date(Date.parse(stored.request.createdAt) + (i + 1) * 60_000);
            const decided = transition(
                stored.request,
                {
                    type: 'decide',
                    decision: {
                        action: i < 10 ? 'approve' : 'reject',
                        by: { upn: 'alice@contoso.com', name: 'Alice' },
                        text: 'ok',
                        at: at.toISOString(),
                    },
                },
                at,
            );
            const s2 = await store.update(stored, decided);
            written[i] = (await store.update(s2, transition(decided, { type: 'apply' }, at))).request;
        }
    }, 120_000);

    async function allPages(filter = {}, size = 50): Promise<IndexedRequest[][]> {
        const pages: IndexedRequest[][] = [];
        let after;
        for (;;) {
            const page = await index.page(filter, size, after);
            pages.push(page.rows);
            if (!page.next) {
                return pages;
            }
            after = page.next;
        }
    }

    it('pages through every request newest first, each once, across months', async () => {
        const pages = await allPages();
        expect(pages.map((p) => p.length)).toEqual([50, 50, 30]);
        const ids = pages.flat().map((r) => r.id);
        expect(ids).toEqual([...written].reverse().map((r) => r.id));
    });

    it('filters on the service side: state, kind, server, origin, requester, approver and dates', async () => {
        const ids = async (filter: object) =>
            (await allPages(filter))
                .flat()
                .map((r) => r.id)
                .sort();
        const expected = (pick: (r: ApprovalRequest, i: number) => boolean) =>
            written
                .filter(pick)
                .map((r) => r.id)
                .sort();
        expect(await ids({ status: 'applied' })).toEqual(expected((r) => r.status === 'applied'));
        expect(await ids({ kind: 'mysql-flexible' })).toEqual(expected((_r, i) => i % 2 === 1));
        expect(await ids({ server: 'pg-three' })).toEqual(expected((_r, i) => i % 3 === 0));
        expect(await ids({ origin: 'foreign' })).toEqual(expected((_r, i) => i % 5 === 0));
        expect(await ids({ requester: 'partner.' })).toEqual(expected((_r, i) => i % 7 === 0));
        expect(await ids({ approver: 'ALICE' })).toEqual(expected((_r, i) => i < 15));
        const from = new Date('2026-10-01T00:00:00Z');
        const to = new Date('2026-10-02T00:00:00Z');
        expect(await ids({ from, to })).toEqual(
            expected((r) => Date.parse(r.createdAt) >= from.getTime() && Date.parse(r.createdAt) < to.getTime()),
        );
        expect(await ids({ status: 'applied', origin: 'foreign', kind: 'postgres-flexible' })).toEqual(
            expected((r, i) => r.status === 'applied' && i % 5 === 0 && i % 2 === 0),
        );
    });

    it('keeps the open requests, and the decided ones by their decision time', async () => {
        const open = await index.open();
        expect(open).toHaveLength(115);
        expect(open.every((r) => r.status === 'pending')).toBe(true);
        const decided = await index.decidedSince(new Date(start - 60_000));
        expect(decided.map((r) => r.id).sort()).toEqual(
            written
                .slice(0, 15)
                .map((r) => r.id)
                .sort(),
        );
        expect(decided.find((r) => r.id === written[3]!.id)?.toDecision).toBe(4 * 60);
    });

    it('refuses a cursor it did not write', () => {
        const cursor = indexKeys(written[0]!);
        expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
        expect(decodeCursor("i-797490|x' or PartitionKey ne '")).toBeUndefined();
        expect(decodeCursor('r-abc|request-abc')).toBeUndefined();
    });

    it('puts back index rows that are missing, and only re-reads what changed once caught up', async () => {
        const client: TableClient = await table();
        const victim = written[20]!;
        const keys = indexKeys(victim);
        await client.deleteEntity(keys.partitionKey, keys.rowKey);
        await client.deleteEntity(openPartition, keys.rowKey);
        const before = (await allPages()).flat().map((r) => r.id);
        expect(before).not.toContain(victim.id);

        const now = new Date();
        // First run: no marker yet, as after an upgrade: every request is indexed again, a budget per call.
        expect(await index.catchUp(now, 600_000)).toEqual({ indexed: 130, complete: true });
        expect((await allPages()).flat().map((r) => r.id)).toContain(victim.id);
        expect((await index.open()).map((r) => r.id)).toContain(victim.id);
        // Within the interval it does nothing.
        expect(await index.catchUp(new Date(now.getTime() + 1000), 600_000)).toEqual({ indexed: 0, complete: true });
        // After it, only the request rows written since the last pass (with a margin for clocks) are read.
        const later = await index.catchUp(new Date(now.getTime() + 700_000), 600_000);
        expect(later.complete).toBe(true);
        expect(later.indexed).toBe(130);
    });

    it('spreads a large pass over several calls, each within its budget, going on where the last stopped', async () => {
        const client: TableClient = await table();
        // An index of another shape (an older version): the next catch-up re-reads every request.
        await client.upsertEntity({
            partitionKey: 'x-index',
            rowKey: 'catch-up',
            at: new Date().toISOString(),
            version: 0,
        });
        const victim = written[77]!;
        const keys = indexKeys(victim);
        await client.deleteEntity(keys.partitionKey, keys.rowKey);
        const calls: { indexed: number; complete: boolean }[] = [];
        for (let i = 0; i < 10; i++) {
            const result = await index.catchUp(new Date(), 600_000, 50);
            calls.push(result);
            if (result.complete) {
                break;
            }
        }
        // Pages of the budget's size; a call stops after a page that has more behind it.
        expect(calls).toEqual([
            { indexed: 50, complete: false },
            { indexed: 50, complete: false },
            { indexed: 30, complete: true },
        ]);
        expect(calls.reduce((n, c) => n + c.indexed, 0)).toBe(130);
        expect((await allPages()).flat().map((r) => r.id)).toContain(victim.id);
    });
});

describe('request index writes of concurrent requests', () => {
    const { table } = azuriteTable('idxb');

    /** The table, with its round trips to the service counted (a transaction is one). */
    function counting(t: TableClient): { client: TableClient; trips: () => number } {
        let trips = 0;
        const client = new Proxy(t, {
            get(target, prop) {
                const value: unknown = Reflect.get(target, prop);
                if (typeof value !== 'function') {
                    return value;
                }
                const bound = (value as (...a: unknown[]) => unknown).bind(target);
                return ['upsertEntity', 'deleteEntity', 'submitTransaction'].includes(String(prop))
                    ? (...args: unknown[]) => {
                          trips += 1;
                          return bound(...args);
                      }
                    : bound;
            },
        });
        return { client, trips: () => trips };
    }

    it('go out together, one transaction per partition at a time, and every row is written as last asked', async () => {
        const t = await table();
        await t.createTable();
        const { client, trips } = counting(t);
        const at = new Date('2026-11-03T09:00:00Z');
        const requests = Array.from({ length: 40 }, () => draft({ at }));
        await Promise.all(requests.map((r) => writeIndex(client, undefined, r)));
        // Two rows each (the month's and the open one), in two shared partitions: a few trips, not 80.
        expect(trips()).toBeLessThanOrEqual(8);

        // Closing half of them while the other half is re-indexed: the open rows of the closed ones are deleted, the
        // rest stay, and a delete that finds nothing (a row missing already) does not fail the others' writes.
        const closed = requests.slice(0, 20).map((r) => ({ ...r, status: 'expired' as const }));
        await t.deleteEntity(openPartition, indexKeys(closed[0]!).rowKey);
        await Promise.all([
            ...closed.map((r, i) => writeIndex(client, requests[i], r)),
            ...requests.slice(20).map((r) => writeIndex(client, undefined, r)),
        ]);
        const open: string[] = [];
        for await (const row of t.listEntities({ queryOptions: { filter: `PartitionKey eq '${openPartition}'` } })) {
            open.push(String(row.rowKey));
        }
        expect(open.sort()).toEqual(
            requests
                .slice(20)
                .map((r) => indexKeys(r).rowKey)
                .sort(),
        );
        const month = indexKeys(requests[0]!).partitionKey;
        const statuses = new Map<string, string>();
        for await (const row of t.listEntities<{ status: string }>({
            queryOptions: { filter: `PartitionKey eq '${month}'` },
        })) {
            statuses.set(String(row.rowKey), row.status);
        }
        expect(statuses.size).toBe(40);
        expect(closed.every((r) => statuses.get(indexKeys(r).rowKey) === 'expired')).toBe(true);
    });
});
