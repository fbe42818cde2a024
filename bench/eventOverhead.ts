/**
 * Event overhead: N relevant events through the real `pecEvents` handler (the request lookup, ARM list, server read,
 * request insert, card post, audit, against the emulators and Azurite), against round trips made raw with `fetch` for
 * ARM and the Bot Connector (a token fetched once) and `TableClient` for storage:
 * - `eventFloorRatio`: against the floor the issue names, one after another: the ARM read of the PEC, the ARM read of
 *   its server, one conditional table write (an insert) and one card post. The same floor with the two ARM reads in
 *   parallel (as the app makes them) is reported beside it.
 * - `eventOverheadRatio`: against every call the app makes, replayed raw: what the app's own code costs.
 * The raw side replays what the app sent for a PEC of the same kind (same URLs, same card, same entity sizes).
 *
 * Both sides run in this process, warmed up, alternating in rounds so that drift falls on both.
 *
 * `countPathRoundTrips` counts the calls of each path (new PEC, redelivery, new write, irrelevant event, click, apply)
 * at the emulators' request logs and at the HTTP client for storage.
 */
import type { EventGridEvent } from '@azure/functions';
import { TableClient } from '@azure/data-tables';
import { pecEvents } from '../functions/pecEvents';
import { storageCalls } from './storageCalls';
import { serverKinds, type ServerKind } from '../src/domain/ids';
import { applyMaxAttempts } from '../src/storage/applyQueue';
import { indexTableName, openPartition } from '../src/storage/requestIndex';
import { applyDecision } from '../src/workflow/applyDecision';
import {
    click,
    ids,
    openCard,
    people,
    resourceWriteEvent,
    seedPendingPec,
    testContext,
    type Harness,
} from '../test/harness';

export interface EventOverheadResult {
    events: number;
    appMs: number;
    rawMs: number;
    /** The app's time ÷ the same calls made raw: what the app's own code costs. */
    eventOverheadRatio: number;
    appPerEventMs: number;
    rawPerEventMs: number;
    /** The app's time ÷ the floor: ARM read of the PEC, of its server, one conditional insert, one card post. */
    eventFloorRatio: number;
    floorPerEventMs: number;
    /** The same floor with the two ARM reads made in parallel, as the app makes them. */
    eventFloorRatioParallel: number;
    floorParallelPerEventMs: number;
    /** Calls per event the app made to ARM, the Bot Connector, storage and Application Insights (tokens excluded). */
    appRoundTrips: number;
    rawRoundTrips: number;
    floorRoundTrips: number;
}

interface Template {
    serverId: string;
    pecId: string;
    /** The GET of the PEC itself (the app lists the server's PECs instead, at the same api-version). */
    pecPath: string;
    serverPath: string;
    armPaths: string[];
    card: Record<string, unknown>;
    requestEntity: Record<string, unknown>;
    auditEntity: Record<string, unknown>;
    /** One of the request's dashboard index rows (the app writes two: the month's and the open ones'). */
    indexEntity: Record<string, unknown>;
}

async function token(h: Harness, resource: string): Promise<string> {
    const url = new URL(h.token.env.IDENTITY_ENDPOINT!);
    url.searchParams.set('api-version', '2019-08-01');
    url.searchParams.set('resource', resource);
    url.searchParams.set('client_id', h.env.AZURE_CLIENT_ID!);
    const res = await fetch(url, { headers: { 'X-IDENTITY-HEADER': h.token.env.IDENTITY_HEADER! } });
    return ((await res.json()) as { access_token: string }).access_token;
}

export async function measureEventOverhead(
    h: Harness,
    options: { events: number; rounds: number },
): Promise<EventOverheadResult> {
    const storage = h.env.AzureWebJobsStorage!;
    storageCalls(h);
    const requests = TableClient.fromConnectionString(storage, h.env.REQUESTS_TABLE!, {
        allowInsecureConnection: true,
    });
    const audit = TableClient.fromConnectionString(storage, h.env.AUDIT_TABLE!, { allowInsecureConnection: true });
    const index = TableClient.fromConnectionString(storage, indexTableName(h.env.REQUESTS_TABLE!), {
        allowInsecureConnection: true,
    });
    const rawTable = TableClient.fromConnectionString(storage, `raw${h.env.REQUESTS_TABLE!.slice(3)}`, {
        allowInsecureConnection: true,
    });
    await rawTable.createTable();

    // A server of its own for each PEC: seeding a server again would replace it and its PECs in the emulator.
    let serial = 0;
    // One event per kind through the app, to warm it up and to record what it sends.
    const templates = new Map<ServerKind, Template>();
    for (const kind of serverKinds) {
        const seeded = seedPendingPec(h.arm, kind, { serverName: `srv-${(serial += 1)}` });
        const armBefore = h.arm.requests.length;
        const convBefore = h.bot.conversations.length;
        await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
        const conversation = h.bot.conversations[convBefore];
        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        if (!conversation || !stored) {
            throw new Error(`event overhead: the warm-up event for ${kind} opened no request or card`);
        }
        const requestEntity = await first(requests, `PartitionKey eq 'r-${stored.request.id}'`);
        const auditEntity = await first(audit, `PartitionKey eq '${stored.request.id}'`);
        await h.deps.settle?.();
        const indexEntity = await first(index, `PartitionKey eq '${openPartition}'`);
        // Reads of the server and its connections; a subscription's home tenant is looked up once a day, not per event.
        const gets = h.arm.requests
            .slice(armBefore)
            .filter((r) => r.method === 'GET' && r.path.toLowerCase().startsWith(seeded.serverId.toLowerCase()));
        const list = gets.find((r) => /\/privateEndpointConnections$/i.test(r.path));
        const server = gets.find((r) => r.path.toLowerCase() === seeded.serverId.toLowerCase());
        if (!list || !server) {
            throw new Error(`event overhead: the warm-up event for ${kind} did not list the PECs and read the server`);
        }
        templates.set(kind, {
            serverId: seeded.serverId,
            pecId: seeded.pecId,
            pecPath: `${seeded.pecId}?api-version=${list.apiVersion}`,
            serverPath: `${server.path}?api-version=${server.apiVersion}`,
            armPaths: gets.map((r) => `${r.path}?api-version=${r.apiVersion}`),
            card: conversation.parameters,
            requestEntity,
            auditEntity,
            indexEntity,
        });
    }
    const armToken = await token(h, h.env.ARM_ENDPOINT!);
    const botToken = await token(h, 'https://api.botframework.com');
    const monitorToken = await token(h, 'https://monitor.azure.com/');
    // What the app sent for one request: its requested and card-posted milestones.
    const telemetryBody = JSON.stringify(h.appInsights.envelopes.slice(-2));

    const app = async (n: number): Promise<{ ms: number; roundTrips: number }> => {
        const seeded = Array.from({ length: n }, (_, i) =>
            seedPendingPec(h.arm, serverKinds[i % serverKinds.length]!, { serverName: `srv-${(serial += 1)}` }),
        );
        const before = roundTrips(h);
        const started = performance.now();
        for (const s of seeded) {
            await pecEvents(resourceWriteEvent(s.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
        }
        const ms = performance.now() - started;
        return { ms, roundTrips: roundTrips(h) - before };
    };

    let rawCount = 0;
    const armCall = async (t: Template, s: { serverId: string; pecId: string }, path: string) => {
        // Every path starts with the PEC's or the server's id; only that prefix is the template's.
        const target = path.startsWith(t.pecId)
            ? `${s.pecId}${path.slice(t.pecId.length)}`
            : `${s.serverId}${path.slice(t.serverId.length)}`;
        const res = await fetch(`${h.arm.url}${target}`, {
            headers: { authorization: `Bearer ${armToken}` },
        });
        await expectOk(res, 'ARM');
    };
    const botCall = async (t: Template) => {
        const res = await fetch(`${h.bot.serviceUrl}v3/conversations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${botToken}`, 'content-type': 'application/json' },
            body: JSON.stringify(t.card),
        });
        await expectOk(res, 'Bot Connector');
    };
    /**
     * `same`: every table, ARM, Bot Connector and ingestion call the app makes for a new PEC, one after another: the
     * request lookup, the two ARM reads, the PEC claim and the request insert, the first audit entry, the request's two
     * index rows, the card, the card's record and its audit entry, and the milestone event to Application Insights
     * (the three blob calls of the audit anchor are the app's alone). `floor`: the four the issue names, one after
     * another; `floorParallel`: the same with the two ARM reads in parallel.
     */
    const raw = async (n: number, mode: 'same' | 'floor' | 'floorParallel'): Promise<number> => {
        const seeded = Array.from({ length: n }, (_, i) =>
            seedPendingPec(h.arm, serverKinds[i % serverKinds.length]!, { serverName: `srv-${(serial += 1)}` }),
        );
        const started = performance.now();
        for (const s of seeded) {
            const t = templates.get(s.kind)!;
            const id = `raw-${(rawCount += 1)}`;
            if (mode === 'floor' || mode === 'floorParallel') {
                if (mode === 'floor') {
                    await armCall(t, s, t.pecPath);
                    await armCall(t, s, t.serverPath);
                } else {
                    await Promise.all([armCall(t, s, t.pecPath), armCall(t, s, t.serverPath)]);
                }
                // An insert is conditional: it fails if the row exists.
                await rawTable.createEntity({ ...t.requestEntity, partitionKey: `r-${id}`, rowKey: `request-${id}` });
                await botCall(t);
                continue;
            }
            await rawTable.getEntity(`p-${id}`, `active-p-${id}`).catch(() => undefined);
            for (const p of t.armPaths) {
                await armCall(t, s, p);
            }
            await rawTable.createEntity({
                partitionKey: `p-${id}`,
                rowKey: `active-p-${id}`,
                requestId: id,
                pecId: s.pecId,
            });
            await rawTable.createEntity({ ...t.requestEntity, partitionKey: `r-${id}`, rowKey: `request-${id}` });
            await rawTable.createEntity({ ...t.auditEntity, partitionKey: id, rowKey: `0000000001-${id}` });
            for (const partitionKey of ['i-raw', 'o-raw']) {
                await rawTable.upsertEntity({ ...t.indexEntity, partitionKey, rowKey: `${id}` }, 'Replace');
            }
            await botCall(t);
            await rawTable.updateEntity(
                { ...t.requestEntity, partitionKey: `r-${id}`, rowKey: `request-${id}` },
                'Replace',
            );
            await rawTable.createEntity({ ...t.auditEntity, partitionKey: id, rowKey: `0000000002-${id}` });
            const res = await fetch(`${h.appInsights.url}/v2.1/track`, {
                method: 'POST',
                headers: { authorization: `Bearer ${monitorToken}`, 'content-type': 'application/json' },
                body: telemetryBody,
            });
            await expectOk(res, 'Application Insights');
        }
        return performance.now() - started;
    };
    await raw(serverKinds.length, 'same');
    await raw(serverKinds.length, 'floor');
    await raw(serverKinds.length, 'floorParallel');

    const perRound = Math.max(1, Math.round(options.events / options.rounds));
    let appMs = 0;
    let rawMs = 0;
    let floorMs = 0;
    let floorParallelMs = 0;
    let appTrips = 0;
    let events = 0;
    for (let round = 0; round < options.rounds; round++) {
        const a = await app(perRound);
        appMs += a.ms;
        appTrips += a.roundTrips;
        rawMs += await raw(perRound, 'same');
        floorMs += await raw(perRound, 'floor');
        floorParallelMs += await raw(perRound, 'floorParallel');
        events += perRound;
    }
    const armReads = templates.get(serverKinds[0]!)!.armPaths.length;
    await rawTable.deleteTable();
    return {
        events,
        appMs,
        rawMs,
        eventOverheadRatio: appMs / rawMs,
        appPerEventMs: appMs / events,
        rawPerEventMs: rawMs / events,
        eventFloorRatio: appMs / floorMs,
        floorPerEventMs: floorMs / events,
        eventFloorRatioParallel: appMs / floorParallelMs,
        floorParallelPerEventMs: floorParallelMs / events,
        appRoundTrips: appTrips / events,
        rawRoundTrips: armReads + 10,
        floorRoundTrips: 4,
    };
}

async function first(table: TableClient, filter: string): Promise<Record<string, unknown>> {
    for await (const entity of table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) {
        const { etag: _etag, timestamp: _timestamp, partitionKey: _p, rowKey: _r, ...rest } = entity;
        return rest;
    }
    throw new Error(`event overhead: no entity for ${filter}`);
}

async function expectOk(res: Response, what: string): Promise<void> {
    await res.arrayBuffer();
    if (!res.ok) {
        throw new Error(`event overhead: ${what} answered ${res.status}`);
    }
}

/** Calls that reached ARM, the Bot Connector, Application Insights and storage (Azurite keeps no log). */
function roundTrips(h: Harness): number {
    return h.arm.requests.length + h.bot.requests.length + h.appInsights.posts + storageCalls(h);
}

/** The calls one path made, by where they went (tokens excluded: cached after the first). */
export interface PathRoundTrips {
    arm: number;
    bot: number;
    graph: number;
    storage: number;
    /** Telemetry to Application Insights (batched, so it may fall to a later path). */
    telemetry: number;
    /** ARM, Bot Connector, Graph and storage. */
    total: number;
}

export interface RoundTripsByPath {
    newPec: PathRoundTrips;
    /** The same event delivered again (Event Grid delivers at least once). */
    redelivery: PathRoundTrips;
    /** Another event about a PEC that has its request: another write, which may be an approval made outside. */
    newWrite: PathRoundTrips;
    irrelevant: PathRoundTrips;
    /** An approver's click, to the invoke's answer (the decision recorded and queued). */
    click: PathRoundTrips;
    /** The queued decision applied: the PUT answered at once, the audit, the card updated for everyone. */
    apply: PathRoundTrips;
}

function snapshot(h: Harness) {
    return {
        arm: h.arm.requests.length,
        bot: h.bot.requests.length,
        graph: h.graph.requests.length,
        storage: storageCalls(h),
        telemetry: h.appInsights.posts,
    };
}

async function counted(h: Harness, work: () => Promise<unknown>): Promise<PathRoundTrips> {
    const before = snapshot(h);
    await work();
    const after = snapshot(h);
    const d = {
        arm: after.arm - before.arm,
        bot: after.bot - before.bot,
        graph: after.graph - before.graph,
        storage: after.storage - before.storage,
        telemetry: after.telemetry - before.telemetry,
    };
    return { ...d, total: d.arm + d.bot + d.graph + d.storage };
}

/**
 * The round trips of each path, counted on a warm process (tokens and the approver's group membership cached, as
 * after the first event and the first click), one path at a time so that nothing else is counted with it.
 */
export async function countPathRoundTrips(h: Harness): Promise<RoundTripsByPath> {
    const deliver = (event: Record<string, unknown>) =>
        pecEvents(event as unknown as EventGridEvent, testContext('pecEvents'));
    // Warm: a first event, a first click (Graph's membership answer is cached briefly) and a first apply.
    const warm = await openCard(h, 'postgres-flexible', { serverName: `paths-warm-${Date.now()}` });
    await click(h, warm.request, { who: people.alice, verb: 'approve', text: 'warm-up' });
    h.arm.putAnswersAtOnce(true);
    try {
        await applyDecision(
            h.deps,
            { requestId: warm.request.id, correlationId: warm.request.correlationId },
            { messageId: 'paths-warm', attempt: 1, maxAttempts: applyMaxAttempts },
            testContext('applyDecision'),
        );
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { serverName: `paths-${Date.now()}` });
        const event = resourceWriteEvent(seeded.pecId);
        const newPec = await counted(h, () => deliver(event));
        const redelivery = await counted(h, () => deliver(event));
        const newWrite = await counted(h, () => deliver(resourceWriteEvent(seeded.pecId)));
        const irrelevant = await counted(h, () =>
            deliver(
                resourceWriteEvent(
                    `/subscriptions/${ids.ours}/resourceGroups/rg-web/providers/Microsoft.Web/sites/app`,
                    {
                        operation: 'Microsoft.Web/sites/write',
                    },
                ),
            ),
        );
        const request = (await h.deps.requests.getActiveForPec(seeded.pecId))!.request;
        const clicked = await counted(h, () =>
            click(h, request, { who: people.alice, verb: 'approve', text: 'Fine for the app tier' }),
        );
        const apply = await counted(h, () =>
            applyDecision(
                h.deps,
                { requestId: request.id, correlationId: request.correlationId },
                { messageId: 'paths-apply', attempt: 1, maxAttempts: applyMaxAttempts },
                testContext('applyDecision'),
            ),
        );
        return { newPec, redelivery, newWrite, irrelevant, click: clicked, apply };
    } finally {
        h.arm.putAnswersAtOnce(false);
        // The clicks queued messages; they were applied here directly. Clear them so nothing else sees them.
        await h.queue.clearMessages().catch(() => undefined);
    }
}
