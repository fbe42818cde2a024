/**
 * Event overhead: N relevant events through the real `pecEvents` handler (ARM list, server read, request insert, card
 * post, audit, against the emulators and Azurite), against the same round trips made raw: `fetch` for ARM and the Bot
 * Connector with a token fetched once, and `TableClient.createEntity` for the request and the audit entry. The raw side
 * replays exactly what the app sent for a PEC of the same kind (same URLs, same card, same entity sizes), so the ratio
 * is the cost of the app's own code and of any round trip it makes beyond those.
 *
 * Both sides run in this process, warmed up, alternating in rounds so that drift falls on both.
 */
import type { EventGridEvent } from '@azure/functions';
import { TableClient } from '@azure/data-tables';
import { pecEvents } from '../functions/pecEvents';
import { storageCalls } from './storageCalls';
import { serverKinds, type ServerKind } from '../src/domain/ids';
import { resourceWriteEvent, seedPendingPec, testContext, type Harness } from '../test/harness';

export interface EventOverheadResult {
    events: number;
    appMs: number;
    rawMs: number;
    /** The app's time ÷ the same calls made raw: what the app's own code costs. */
    eventOverheadRatio: number;
    appPerEventMs: number;
    rawPerEventMs: number;
    /** The app's time ÷ only the five calls the issue lists (ARM list, server read, request insert, card, audit). */
    minimalRatio: number;
    minimalPerEventMs: number;
    /** Calls per event the app made to ARM, the Bot Connector, storage and Application Insights (tokens excluded). */
    appRoundTrips: number;
    rawRoundTrips: number;
    minimalRoundTrips: number;
}

interface Template {
    serverId: string;
    armPaths: string[];
    card: Record<string, unknown>;
    requestEntity: Record<string, unknown>;
    auditEntity: Record<string, unknown>;
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
        templates.set(kind, {
            serverId: seeded.serverId,
            armPaths: h.arm.requests
                .slice(armBefore)
                .filter((r) => r.method === 'GET')
                .map((r) => `${r.path}?api-version=${r.apiVersion}`),
            card: conversation.parameters,
            requestEntity,
            auditEntity,
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
    const armCall = async (t: Template, s: { serverId: string }, path: string) => {
        const res = await fetch(`${h.arm.url}${path.split(t.serverId).join(s.serverId)}`, {
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
     * `same`: every call the app makes for a new PEC, in its order: the request lookup, the two ARM reads, the PEC
     * claim and the request insert, the claim read back, the first audit entry, the card, the card's record and its
     * audit entry, and the milestone event to Application Insights. `minimal`: only the five the issue lists.
     */
    const raw = async (n: number, mode: 'same' | 'minimal'): Promise<number> => {
        const seeded = Array.from({ length: n }, (_, i) =>
            seedPendingPec(h.arm, serverKinds[i % serverKinds.length]!, { serverName: `srv-${(serial += 1)}` }),
        );
        const started = performance.now();
        for (const s of seeded) {
            const t = templates.get(s.kind)!;
            const id = `raw-${(rawCount += 1)}`;
            if (mode === 'minimal') {
                for (const p of t.armPaths) {
                    await armCall(t, s, p);
                }
                await rawTable.createEntity({ ...t.requestEntity, partitionKey: `r-${id}`, rowKey: `request-${id}` });
                await botCall(t);
                await rawTable.createEntity({ ...t.auditEntity, partitionKey: id, rowKey: `0000000001-${id}` });
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
            await rawTable.getEntity(`p-${id}`, `active-p-${id}`);
            await rawTable.createEntity({ ...t.auditEntity, partitionKey: id, rowKey: `0000000001-${id}` });
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
    await raw(serverKinds.length, 'minimal');

    const perRound = Math.max(1, Math.round(options.events / options.rounds));
    let appMs = 0;
    let rawMs = 0;
    let minimalMs = 0;
    let appTrips = 0;
    let events = 0;
    for (let round = 0; round < options.rounds; round++) {
        const a = await app(perRound);
        appMs += a.ms;
        appTrips += a.roundTrips;
        rawMs += await raw(perRound, 'same');
        minimalMs += await raw(perRound, 'minimal');
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
        minimalPerEventMs: minimalMs / events,
        minimalRatio: appMs / minimalMs,
        appRoundTrips: appTrips / events,
        rawRoundTrips: armReads + 9,
        minimalRoundTrips: armReads + 3,
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
