import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { ConcurrencyError, TransientError } from '../../src/domain/errors';
import { openRequest, transition, type ApprovalRequest, type RequestTransition } from '../../src/domain/request';
import { claimKeys, requestKeys, TableRequestStore } from '../../src/storage/requestStore';
import { FaultyStorage } from '../emulators/faultyStorage';
import { azuriteConnectionString, azuriteTable, lazyTable } from './azuriteTable';

/**
 * The request store against the real Azurite started by the jest global setup: ETags, 409 on a duplicate insert and
 * 412 on a stale conditional write come from the emulator, not from a mock.
 */

const sub = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
const now = new Date('2026-11-21T10:00:00Z');
const later = new Date('2026-11-21T10:05:00Z');

const { table } = azuriteTable('req');

function newId(): string {
    return randomBytes(16).toString('base64url');
}

function newPecId(): string {
    const suffix = randomBytes(4).toString('hex');
    return `/subscriptions/${sub}/resourceGroups/rg-Data/providers/Microsoft.DBforPostgreSQL/flexibleServers/Pg-${suffix}/privateEndpointConnections/pe-App.${suffix}`;
}

function draft(pecId: string, id = newId()): ApprovalRequest {
    return openRequest({
        id,
        pecId,
        facts: {
            serverKind: 'postgres-flexible',
            serverId: pecId.replace(/\/privateEndpointConnections\/.*$/, ''),
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Disabled',
            serverTags: { environment: 'prod' },
            pecName: pecId.split('/').pop() ?? '',
            privateEndpointId: `/subscriptions/${sub}/resourceGroups/rg-app/providers/Microsoft.Network/privateEndpoints/pe-app`,
            privateEndpointTrusted: true,
            requestMessage: 'Please approve',
            approvedPecCount: 0,
            approvedUntrustedPecCount: 0,
        },
        requester: { objectId: '0a0a0a0a-1111-4111-8111-000000000abc', upn: 'dev@contoso.com' },
        correlationId: `corr-${id}`,
        now,
    });
}

const decide: RequestTransition = {
    type: 'decide',
    decision: { action: 'approve', by: { objectId: 'o-1', name: 'Ann Approver' }, text: 'ok', at: later.toISOString() },
};

async function client(): Promise<TableClient> {
    return table();
}

describe('TableRequestStore on Azurite', () => {
    const store = new TableRequestStore(table);

    it('creates a request, and a second call for the same PEC (any id casing) returns the first one', async () => {
        const pecId = newPecId();
        const first = draft(pecId);
        const created = await store.createIfNone(first);
        expect(created.created).toBe(true);
        expect(created.stored.request).toEqual(first);
        expect(created.stored.etag).toBeTruthy();

        const again = await store.createIfNone(draft(pecId.toUpperCase()));
        expect(again.created).toBe(false);
        expect(again.stored.request.id).toBe(first.id);
        expect(again.stored.request).toEqual(first);

        const lower = await store.createIfNone(draft(`${pecId.toLowerCase()}/`));
        expect(lower.created).toBe(false);
        expect(lower.stored.request.id).toBe(first.id);
    });

    it('records exactly one request for 10 concurrent calls on one PEC', async () => {
        const pecId = newPecId();
        const drafts = Array.from({ length: 10 }, () => draft(pecId));
        const results = await Promise.all(drafts.map((d) => store.createIfNone(d)));
        const winners = results.filter((r) => r.created);
        expect(winners).toHaveLength(1);
        const winnerId = winners[0]!.stored.request.id;
        expect(drafts.map((d) => d.id)).toContain(winnerId);
        expect(new Set(results.map((r) => r.stored.request.id))).toEqual(new Set([winnerId]));
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(winnerId);
        // The losers' drafts were never written.
        for (const d of drafts.filter((x) => x.id !== winnerId)) {
            expect(await store.get(d.id)).toBeUndefined();
        }
    });

    it('reads a request by id and by its PEC', async () => {
        const pecId = newPecId();
        const request = draft(pecId);
        const { stored } = await store.createIfNone(request);

        const byId = await store.get(request.id);
        expect(byId?.request).toEqual(request);
        expect(byId?.etag).toBe(stored.etag);

        const byPec = await store.getActiveForPec(pecId.toUpperCase());
        expect(byPec?.request).toEqual(request);

        expect(await store.get(newId())).toBeUndefined();
        expect(await store.getActiveForPec(newPecId())).toBeUndefined();
    });

    it('updates with the current etag and returns a new etag', async () => {
        const { stored } = await store.createIfNone(draft(newPecId()));
        const decided = transition(stored.request, decide, later);
        const updated = await store.update(stored, decided);
        expect(updated.request).toEqual(decided);
        expect(updated.etag).toBeTruthy();
        expect(updated.etag).not.toBe(stored.etag);

        const read = await store.get(decided.id);
        expect(read?.request.status).toBe('decided');
        expect(read?.request.decision?.by.name).toBe('Ann Approver');
        expect(read?.etag).toBe(updated.etag);

        // Still open: the claim is kept.
        expect((await store.getActiveForPec(decided.pecId))?.request.id).toBe(decided.id);
    });

    it('refuses an update with a stale etag (the first writer wins)', async () => {
        const { stored } = await store.createIfNone(draft(newPecId()));
        const first = await store.update(stored, transition(stored.request, decide, later));

        const rejected = transition(
            stored.request,
            {
                type: 'decide',
                decision: {
                    action: 'reject',
                    by: { objectId: 'o-2', name: 'Bob' },
                    text: 'no',
                    at: later.toISOString(),
                },
            },
            later,
        );
        await expect(store.update(stored, rejected)).rejects.toBeInstanceOf(ConcurrencyError);

        const read = await store.get(stored.request.id);
        expect(read?.request.decision?.action).toBe('approve');
        expect(read?.etag).toBe(first.etag);
    });

    it('releases the PEC claim when a request is applied, so a later pending PEC gets a new request', async () => {
        const pecId = newPecId();
        const { stored } = await store.createIfNone(draft(pecId));
        const decided = await store.update(stored, transition(stored.request, decide, later));
        expect(await store.getActiveForPec(pecId)).toBeDefined();

        const applied = await store.update(decided, transition(decided.request, { type: 'apply' }, later));
        expect(applied.request.status).toBe('applied');
        expect(await store.getActiveForPec(pecId)).toBeUndefined();
        expect((await store.get(stored.request.id))?.request.status).toBe('applied');

        const next = draft(pecId);
        const created = await store.createIfNone(next);
        expect(created.created).toBe(true);
        expect(created.stored.request.id).toBe(next.id);
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(next.id);
    });

    it('releases the PEC claim when a request is superseded', async () => {
        const pecId = newPecId();
        const { stored } = await store.createIfNone(draft(pecId));
        await store.update(stored, transition(stored.request, { type: 'supersede', reason: 'removed' }, later));
        expect(await store.getActiveForPec(pecId)).toBeUndefined();

        const created = await store.createIfNone(draft(pecId.toUpperCase()));
        expect(created.created).toBe(true);
        expect(created.stored.request.id).not.toBe(stored.request.id);
    });

    it('finds the active request through a remembered claim only while that request still holds the PEC', async () => {
        const pecId = newPecId();
        // Two processes: `here` remembers which request the claim named; `there` changes the PEC's request meanwhile.
        const here = new TableRequestStore(table);
        const there = new TableRequestStore(table);
        const { stored: first } = await here.createIfNone(draft(pecId));
        expect((await here.getActiveForPec(pecId))?.request.id).toBe(first.request.id);

        // Final elsewhere, and nothing opened since: no active request, as the claim alone would say.
        const seen = (await there.getActiveForPec(pecId))!;
        await there.update(seen, transition(seen.request, { type: 'supersede', reason: 'removed' }, later));
        expect(await here.getActiveForPec(pecId)).toBeUndefined();

        // A new pending state opened elsewhere: the remembered request is final, so the claim is read again.
        const { stored: second } = await there.createIfNone(draft(pecId));
        expect((await here.getActiveForPec(pecId.toUpperCase()))?.request.id).toBe(second.request.id);
        const superseded = await there.update(
            second,
            transition(second.request, { type: 'supersede', reason: 'removed' }, later),
        );
        const { stored: third } = await there.createIfNone(draft(pecId));
        expect(superseded.request.status).toBe('superseded');
        expect((await here.getActiveForPec(pecId))?.request.id).toBe(third.request.id);
    });

    it('takes back the index rows of a request whose claim was taken over before it was read back', async () => {
        const pecId = newPecId();
        const { table: indexTable } = azuriteTable('reqidx');
        const there = new TableRequestStore(table, () => now, indexTable);
        let takenOver = false;
        // Between this writer's request insert and its claim read-back, another delivery clears the claim as dead (a
        // writer that hung) and opens its own request: what the read-back is there to catch.
        const hooked = async (): Promise<TableClient> => {
            const t = await table();
            return new Proxy(t, {
                get(target, prop) {
                    if (prop === 'createEntity') {
                        return async (...args: Parameters<TableClient['createEntity']>) => {
                            const result = await target.createEntity(...args);
                            if (!takenOver && String(args[0].rowKey).startsWith('request-')) {
                                takenOver = true;
                                await target.deleteEntity(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey);
                                await there.createIfNone(draft(pecId));
                            }
                            return result;
                        };
                    }
                    const value: unknown = Reflect.get(target, prop);
                    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
                },
            });
        };
        // Its clock says the two inserts took a minute, so it reads its claim back (a quicker writer trusts its claim).
        const slow = new TableRequestStore(hooked, () => now, indexTable, { elapsedMs: minuteEveryCall() });
        const mine = draft(pecId);

        const outcome = await slow.createIfNone(mine);

        expect(takenOver).toBe(true);
        expect(outcome.created).toBe(false);
        expect(outcome.stored.request.id).not.toBe(mine.id);
        const rows: string[] = [];
        for await (const row of (await indexTable()).listEntities()) {
            rows.push(String(row.rowKey));
        }
        expect(rows.some((r) => r.endsWith(`-${mine.id}`))).toBe(false);
        expect(rows.filter((r) => r.endsWith(`-${outcome.stored.request.id}`))).toHaveLength(2);
        await (await indexTable()).deleteTable();
    });

    it('judges a claim dead by the time read before looking for its request, not after a stalled lookup', async () => {
        const pecId = newPecId();
        // The writer's request insert waits at a gate, after its claim went in.
        let openGate!: () => void;
        const gate = new Promise<void>((resolve) => (openGate = resolve));
        const writer = new TableRequestStore(
            hookedTable(table, {
                createEntity: async (target, args) => {
                    if (String(args[0].rowKey).startsWith('request-')) {
                        await gate;
                    }
                    return target.createEntity(...args);
                },
            }),
        );
        const mine = draft(pecId);
        const writing = writer.createIfNone(mine);
        const t = await client();
        for (let i = 0; i < 100; i++) {
            const claim = await t
                .getEntity(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey)
                .catch(() => undefined);
            if (claim) {
                break;
            }
            await new Promise((r) => setTimeout(r, 10));
        }
        // Another delivery looks for the claimed request and does not find it; its lookup then stalls for a minute,
        // during which the writer finishes (quickly, so it trusts its claim).
        let offsetMs = 0;
        let stalled = false;
        const other = new TableRequestStore(
            hookedTable(table, {
                getEntity: async (target, args) => {
                    const lookup = target.getEntity(...args);
                    if (!stalled && String(args[1]).startsWith('request-')) {
                        stalled = true;
                        await lookup.catch(() => undefined);
                        openGate();
                        await writing;
                        offsetMs = 60_000;
                    }
                    return lookup;
                },
            }),
            () => new Date(Date.now() + offsetMs),
        );
        const theirs = await other.createIfNone(draft(pecId));

        expect(stalled).toBe(true);
        expect(await writing).toMatchObject({ created: true, stored: { request: { id: mine.id } } });
        // The claim was a second old when the lookup began: not dead, so the other delivery waits and finds the request.
        expect(theirs).toMatchObject({ created: false, stored: { request: { id: mine.id } } });
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(mine.id);
    });

    it('trusts its claim without reading it back when both inserts were quick', async () => {
        const pecId = newPecId();
        const calls: string[] = [];
        const counted = new TableRequestStore(
            hookedTable(table, {
                createEntity: (target, args) => {
                    calls.push(`insert ${String(args[0].rowKey).split('-')[0]}`);
                    return target.createEntity(...args);
                },
                getEntity: (target, args) => {
                    calls.push(`read ${String(args[1]).split('-')[0]}`);
                    return target.getEntity(...args);
                },
            }),
        );
        await counted.createIfNone(draft(pecId));
        expect(calls).toEqual(['insert active', 'insert request']);
    });

    it('writes the index rows behind the request writes when asked, in the order of the writes, until settled', async () => {
        const pecId = newPecId();
        const { table: indexTable } = azuriteTable('reqidx');
        // The first index write's table opens only when the test says so (nothing the store returns may wait for it);
        // the second's at once, so only the store's ordering can keep it from landing first.
        let openIndex!: () => void;
        const opened = new Promise<void>((resolve) => (openIndex = resolve));
        let opens = 0;
        const behind = new TableRequestStore(
            table,
            () => now,
            async () => {
                if ((opens += 1) === 1) {
                    await opened;
                }
                return indexTable();
            },
            { indexBehind: true },
        );
        const { stored } = await behind.createIfNone(draft(pecId));
        const superseded = await behind.update(
            stored,
            transition(stored.request, { type: 'supersede', reason: 'removed' }, later),
        );
        let settled = false;
        const settling = behind.settled().then(() => (settled = true));
        await new Promise((r) => setTimeout(r, 20));
        expect(settled).toBe(false);

        openIndex();
        await settling;
        const rows: string[] = [];
        for await (const row of (await indexTable()).listEntities()) {
            if (String(row.rowKey).endsWith(`-${superseded.request.id}`)) {
                rows.push(String(row.partitionKey).slice(0, 2));
            }
        }
        // Opened, then superseded: the open row is gone again, which only holds if the second write's rows came second.
        expect(rows).toEqual(['i-']);
        await (await indexTable()).deleteTable();
    });

    it("leaves another request's claim alone when an older request reaches a final state", async () => {
        const pecId = newPecId();
        const { stored: old } = await store.createIfNone(draft(pecId));
        const superseded = await store.update(old, transition(old.request, { type: 'supersede', reason: 'x' }, later));
        const { stored: current } = await store.createIfNone(draft(pecId));

        // A late write to the old, already final request must not release the new request's claim.
        const stillFinal = { ...superseded.request, updatedAt: later.toISOString() };
        await store.update({ request: old.request, etag: superseded.etag }, stillFinal);
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(current.request.id);
    });

    it('takes over an orphan claim (its writer died between the two inserts) once it is old enough', async () => {
        const pecId = newPecId();
        const t = await client();
        await t.createEntity({
            ...claimKeys(pecId),
            requestId: newId(),
            pecId,
        });
        // The claim's timestamp is the emulator's clock; a store whose clock is a minute ahead sees it as dead.
        const ahead = new TableRequestStore(table, () => new Date(Date.now() + 60_000));
        const request = draft(pecId);
        const created = await ahead.createIfNone(request);
        expect(created.created).toBe(true);
        expect(created.stored.request.id).toBe(request.id);
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(request.id);
    });

    it('does not take over a fresh claim whose request is not written yet', async () => {
        const pecId = newPecId();
        const ghost = newId();
        const t = await client();
        await t.createEntity({ ...claimKeys(pecId), requestId: ghost, pecId });
        await expect(store.createIfNone(draft(pecId))).rejects.toBeInstanceOf(TransientError);
        const claim = await t.getEntity<{ requestId: string }>(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey);
        expect(claim.requestId).toBe(ghost);
    });

    it('gives the claim back when the request itself cannot be recorded', async () => {
        const { stored: existing } = await store.createIfNone(draft(newPecId()));
        const pecId = newPecId();
        // The same request id again: the claim insert succeeds, the request insert meets a 409.
        await expect(store.createIfNone(draft(pecId, existing.request.id))).rejects.toThrow();
        const t = await client();
        await expect(t.getEntity(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey)).rejects.toMatchObject({
            statusCode: 404,
        });

        const next = draft(pecId);
        const created = await store.createIfNone(next);
        expect(created.created).toBe(true);
        expect(created.stored.request.id).toBe(next.id);
    });

    it('does not let a claim left on a final request block the PEC (a crash between the update and the release)', async () => {
        const pecId = newPecId();
        const { stored } = await store.createIfNone(draft(pecId));
        const final = transition(stored.request, { type: 'supersede', reason: 'PEC removed' }, later);
        // Write the final state directly, as if the process died before releasing the claim.
        const t = await client();
        await t.updateEntity(
            {
                ...requestKeys(final.id),
                data: JSON.stringify(final),
                status: final.status,
                pecId: final.pecId,
                createdAt: final.createdAt,
            },
            'Replace',
            { etag: stored.etag },
        );
        expect(
            (await t.getEntity<{ requestId: string }>(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey))
                .requestId,
        ).toBe(final.id);

        expect(await store.getActiveForPec(pecId)).toBeUndefined();
        const next = draft(pecId);
        const created = await store.createIfNone(next);
        expect(created.created).toBe(true);
        expect(created.stored.request.id).toBe(next.id);
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(next.id);
    });
});

/**
 * Writes whose answer is lost: the try reaches the table and takes effect, the answer never comes, the client gives
 * up after its bound and retries. The retry meets the write's own result (409 on an insert, 412 on a conditional
 * update), which the store must recognise as its own instead of taking it for another writer.
 */
describe('TableRequestStore when an answer is lost (through a fault-injecting proxy)', () => {
    let proxy: FaultyStorage;
    let store: TableRequestStore;
    const name = `lost${randomBytes(6).toString('hex')}`;
    const tablePath = `/${name}`;
    const lostAnswer = { kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 } as const;
    /** Passes one request untouched: queued faults apply in order, so this lets the first of two inserts through. */
    const passOnce = { kind: 'slow', delayMs: 0 } as const;

    /** The same table straight on Azurite, for what the test itself reads and for a second, unfaulted delivery. */
    const direct = lazyTable(name);

    /** The table through the proxy, with short timeouts so that a lost answer is retried quickly. */
    const throughProxy = () =>
        lazyTable(name, {
            connectionString: proxy.connectionString,
            timeoutMs: 300,
            maxRetries: 2,
            retryDelayInMs: 10,
        });

    beforeAll(async () => {
        proxy = await FaultyStorage.start(azuriteConnectionString());
        store = new TableRequestStore(throughProxy());
        await store.get(newId()); // creates the table before any fault is queued
    });
    afterAll(() => proxy.close());
    afterEach(() => proxy.faults.clear());

    /** The next delivery for the PEC gets the request already recorded, and the PEC has no other. */
    async function expectNextDeliveryFinds(pecId: string, requestId: string): Promise<void> {
        const again = await store.createIfNone(draft(pecId));
        expect(again).toMatchObject({ created: false, stored: { request: { id: requestId } } });
        expect(await requestsOf(pecId)).toEqual([requestId]);
    }

    async function requestsOf(pecId: string): Promise<string[]> {
        const ids: string[] = [];
        for await (const { request } of store.listRequests()) {
            if (request.pecId === pecId) {
                ids.push(request.id);
            }
        }
        return ids;
    }

    it('takes a claim whose insert went through unanswered for its own, and opens the request at once', async () => {
        const pecId = newPecId();
        proxy.faults.add(lostAnswer, { method: 'POST', pathIncludes: tablePath });
        const request = draft(pecId);

        const created = await store.createIfNone(request);

        // Not a TransientError after waiting for "another invocation" that is this one.
        expect(created.created).toBe(true);
        expect(created.stored.request.id).toBe(request.id);
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(request.id);
    });

    it('takes its own claim even when the retries after the lost answer all fail', async () => {
        const pecId = newPecId();
        proxy.faults.add(lostAnswer, { method: 'POST', pathIncludes: tablePath });
        proxy.faults.add({ kind: 'error', status: 500 }, { times: 2, method: 'POST', pathIncludes: tablePath });
        const request = draft(pecId);

        const created = await store.createIfNone(request);

        expect(created).toMatchObject({ created: true, stored: { request: { id: request.id } } });
        expect((await store.getActiveForPec(pecId))?.request.id).toBe(request.id);
    });

    it('records one request when the request insert went through unanswered', async () => {
        const pecId = newPecId();
        proxy.faults.add(passOnce, { method: 'POST', pathIncludes: tablePath });
        proxy.faults.add(lostAnswer, { method: 'POST', pathIncludes: tablePath });
        const request = draft(pecId);

        const created = await store.createIfNone(request);

        expect(created.created).toBe(true);
        expect(created.stored.request).toEqual(request);
        // The claim is kept, and no second request opens for the PEC on the next delivery.
        await expectNextDeliveryFinds(pecId, request.id);
    });

    it('keeps the claim when the request insert may have gone through and the store cannot tell', async () => {
        const pecId = newPecId();
        const request = draft(pecId);
        proxy.faults.add(passOnce, { method: 'POST', pathIncludes: tablePath });
        // The request insert goes through, its answer is lost, and its retries fail; so does every look at the row.
        proxy.faults.add(lostAnswer, { method: 'POST', pathIncludes: tablePath });
        proxy.faults.add({ kind: 'error', status: 500 }, { times: 2, method: 'POST', pathIncludes: tablePath });
        proxy.faults.add({ kind: 'error', status: 500 }, { times: 3, method: 'GET', pathIncludes: `r-${request.id}` });

        await expect(store.createIfNone(request)).rejects.toBeInstanceOf(TransientError);

        // The row is there, so the claim must still name it: given back, the next delivery (or the sweep) would open
        // a second request for the PEC.
        expect((await store.get(request.id))?.request.id).toBe(request.id);
        await expectNextDeliveryFinds(pecId, request.id);
    });

    it('keeps the claim for an insert that failed as a throttle or a 5xx (it may still land), until it counts as dead', async () => {
        const pecId = newPecId();
        const request = draft(pecId);
        proxy.faults.add(passOnce, { method: 'POST', pathIncludes: tablePath });
        proxy.faults.add({ kind: 'error', status: 500 }, { times: 3, method: 'POST', pathIncludes: tablePath });

        await expect(store.createIfNone(request)).rejects.toBeInstanceOf(TransientError);

        const t = await direct();
        const claim = await t.getEntity<{ requestId: string }>(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey);
        expect(claim.requestId).toBe(request.id);
        // Once no row has come for the claim's whole grace period, the next delivery takes the PEC over.
        const ahead = new TableRequestStore(direct, () => new Date(Date.now() + 60_000));
        const next = draft(pecId);
        expect(await ahead.createIfNone(next)).toMatchObject({ created: true, stored: { request: { id: next.id } } });
    });

    it('takes an update that went through unanswered for its own, not for a concurrent writer', async () => {
        const { stored } = await store.createIfNone(draft(newPecId()));
        proxy.faults.add(lostAnswer, { method: 'PUT', pathIncludes: `r-${stored.request.id}` });
        const decided = transition(stored.request, decide, later);

        const updated = await store.update(stored, decided);

        expect(updated.request).toEqual(decided);
        expect((await store.get(decided.id))?.etag).toBe(updated.etag);
        // A real second writer with the old ETag is still refused.
        await expect(store.update(stored, { ...decided, updatedAt: now.toISOString() })).rejects.toBeInstanceOf(
            ConcurrencyError,
        );
    });

    it('takes an update for done when its retries failed after the first try went through unanswered', async () => {
        const { stored } = await store.createIfNone(draft(newPecId()));
        const path = `r-${stored.request.id}`;
        proxy.faults.add(lostAnswer, { method: 'PUT', pathIncludes: path });
        proxy.faults.add({ kind: 'error', status: 500 }, { times: 2, method: 'PUT', pathIncludes: path });
        const decided = transition(stored.request, decide, later);

        await expect(store.update(stored, decided)).resolves.toMatchObject({ request: decided });
        expect((await store.get(decided.id))?.request.status).toBe('decided');
    });

    it('does not announce a request whose claim was taken over while its insert was slow', async () => {
        const pecId = newPecId();
        // The first writer's claim goes in; its request insert takes 1.5 s.
        proxy.faults.add(passOnce, { method: 'POST', pathIncludes: tablePath });
        proxy.faults.add({ kind: 'slow', delayMs: 1_500 }, { method: 'POST', pathIncludes: tablePath });
        const slow = draft(pecId);
        // The writer measures 1.5 s as the 40 s a hung try would take, so it reads its claim back.
        const slowWriter = new TableRequestStore(throughProxy(), undefined, undefined, {
            elapsedMs: () => performance.now() * 27,
        });
        const first = slowWriter.createIfNone(slow);
        const t = await direct();
        await waitFor(async () => {
            const claim = await t
                .getEntity<{ requestId: string }>(claimKeys(pecId).partitionKey, claimKeys(pecId).rowKey)
                .catch(() => undefined);
            return claim?.requestId === slow.id;
        });
        // Meanwhile a second delivery, whose clock sees the claim as dead, clears it and opens its own request.
        const ahead = new TableRequestStore(direct, () => new Date(Date.now() + 60_000));
        const other = draft(pecId);
        const second = await ahead.createIfNone(other);
        expect(second).toMatchObject({ created: true, stored: { request: { id: other.id } } });

        // The slow writer finds the claim gone to the other request: it answers with that one and removes its own.
        const late = await first;
        expect(late).toMatchObject({ created: false, stored: { request: { id: other.id } } });
        expect(await store.get(slow.id)).toBeUndefined();
        expect(await requestsOf(pecId)).toEqual([other.id]);
    });
});

type Hook<K extends 'createEntity' | 'getEntity'> = (
    target: TableClient,
    args: Parameters<TableClient[K]>,
) => ReturnType<TableClient[K]>;

/** The table with some of its calls going through the test's hooks first. */
function hookedTable(
    table: () => Promise<TableClient>,
    hooks: { createEntity?: Hook<'createEntity'>; getEntity?: Hook<'getEntity'> },
): () => Promise<TableClient> {
    return async () => {
        const t = await table();
        return new Proxy(t, {
            get(target, prop) {
                if (prop === 'createEntity' && hooks.createEntity) {
                    const hook = hooks.createEntity;
                    return (...args: Parameters<TableClient['createEntity']>) => hook(target, args);
                }
                if (prop === 'getEntity' && hooks.getEntity) {
                    const hook = hooks.getEntity;
                    return (...args: Parameters<TableClient['getEntity']>) => hook(target, args);
                }
                const value: unknown = Reflect.get(target, prop);
                return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
            },
        });
    };
}

/** A writer's clock on which every call to it is a minute after the one before. */
function minuteEveryCall(): () => number {
    let ms = 0;
    return () => (ms += 60_000);
}

async function waitFor(check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 100; i++) {
        if (await check()) {
            return;
        }
        await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('waitFor: condition not met');
}
