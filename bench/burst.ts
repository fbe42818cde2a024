/**
 * Burst: thousands of Event Grid events delivered concurrently to the real `pecEvents` handler, as Event Grid does when
 * many private endpoints are created at once: a share of them duplicates (Event Grid delivers at least once, and one
 * PEC write raises more than one event) and a share irrelevant (other resources of the watched subscriptions). Cards
 * are counted at the Bot Connector emulator: each relevant PEC must get exactly one.
 */
import type { EventGridEvent } from '@azure/functions';
import { pecEvents } from '../functions/pecEvents';
import { serverKinds } from '../src/domain/ids';
import { burstSeries, type BurstSeries, type EventTiming } from './chart';
import { cpuNow, cpuSince } from './cpu';
import { blobCalls, countStorageCalls, storageCalls } from './storageCalls';
import { ids, resourceWriteEvent, seedPendingPec, testContext, type Harness } from '../test/harness';

export interface BurstOptions {
    events: number;
    duplicateShare: number;
    irrelevantShare: number;
    /** Invocations in flight at once, as a Functions instance's dynamic concurrency would allow. */
    concurrency: number;
    seed: number;
}

export interface BurstResult {
    events: number;
    pecs: number;
    seconds: number;
    burstEventsPerSecond: number;
    burstDuplicateCards: number;
    burstMissedCards: number;
    failedDeliveries: number;
    /** Calls the app made to Azurite during the burst: on this machine, Azurite's CPU is what bounds the burst. */
    storageCalls: number;
    storageCallsPerSecond: number;
    /**
     * Storage calls per delivery, charged to the invocation that made them: the first delivery about each PEC (which
     * opens its request and posts its card), later deliveries of the same event, new events about a PEC that has its
     * request (another write, which may be an approval outside), and irrelevant events.
     */
    storageCallsPer: { newPec: number; redelivery: number; newWrite: number; irrelevant: number };
    /** Calls to Azurite's blob endpoint (the audit anchors, behind the steps), which `storageCalls` leaves out. */
    blobCalls: number;
    /**
     * CPU per event, ms: this process (the app with the ARM, Bot Connector and Application Insights emulators) and
     * Azurite (undefined where the kernel does not say).
     */
    cpuMsPerEvent: { process: number; azurite?: number };
    /** Events per second over time and latency percentiles, for the chart. */
    series: BurstSeries;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same mix and order. */
export function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

export async function measureBurst(h: Harness, options: BurstOptions): Promise<BurstResult> {
    const random = prng(options.seed);
    const irrelevant = Math.round(options.events * options.irrelevantShare);
    const duplicates = Math.round(options.events * options.duplicateShare);
    const unique = options.events - irrelevant - duplicates;

    // A server of its own for each PEC: seeding a server again would replace it and its PECs in the emulator.
    const pecs = Array.from({ length: unique }, (_, i) =>
        seedPendingPec(h.arm, serverKinds[i % serverKinds.length]!, { serverName: `burst-${i}` }),
    );
    const events: Record<string, unknown>[] = pecs.map((p) => resourceWriteEvent(p.pecId));
    // What each event is, for the per-kind storage calls: the PEC it is about (none when irrelevant), and whether it is
    // a delivery of an event already in the list.
    const about = new Map<Record<string, unknown>, number>(events.map((e, i) => [e, i]));
    const redeliveries: Record<string, unknown>[] = [];
    for (let i = 0; i < duplicates; i++) {
        // A redelivery is the same event again; a second write of the same PEC is a new event about it.
        const index = Math.floor(random() * pecs.length);
        const pec = pecs[index]!;
        if (random() < 0.5) {
            redeliveries.push(events[index]!);
        } else {
            const write = resourceWriteEvent(pec.pecId);
            about.set(write, index);
            events.push(write);
        }
    }
    events.push(...redeliveries);
    for (let i = 0; i < irrelevant; i++) {
        const server = pecs[Math.floor(random() * pecs.length)]!.serverId;
        events.push(
            i % 2 === 0
                ? // A write on the server itself, not on a PEC.
                  resourceWriteEvent(server, { operation: 'Microsoft.DBforPostgreSQL/flexibleServers/write' })
                : // Something else in a watched subscription.
                  resourceWriteEvent(
                      `/subscriptions/${ids.ours}/resourceGroups/rg-web/providers/Microsoft.Web/sites/app-${i}`,
                      { operation: 'Microsoft.Web/sites/write' },
                  ),
        );
    }
    // Shuffled, so duplicates arrive while the first delivery of their PEC is still in flight.
    for (let i = events.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [events[i], events[j]] = [events[j]!, events[i]!];
    }

    const cardsBefore = h.bot.conversations.length;
    const storageBefore = storageCalls(h);
    const blobBefore = blobCalls(h);
    let failed = 0;
    let next = 0;
    const timings: EventTiming[] = [];
    const seenPec = new Set<number>();
    const seenEvent = new Set<Record<string, unknown>>();
    const calls = {
        newPec: { calls: 0, events: 0 },
        redelivery: { calls: 0, events: 0 },
        newWrite: { calls: 0, events: 0 },
        irrelevant: { calls: 0, events: 0 },
    };
    const cpuBefore = cpuNow();
    const started = performance.now();
    const worker = async () => {
        for (let i = next++; i < events.length; i = next++) {
            const event = events[i]!;
            const pec = about.get(event);
            // In arrival order: the first delivery about a PEC is the one that finds it new.
            const kind =
                pec === undefined
                    ? 'irrelevant'
                    : !seenPec.has(pec)
                      ? 'newPec'
                      : seenEvent.has(event)
                        ? 'redelivery'
                        : 'newWrite';
            if (pec !== undefined) {
                seenPec.add(pec);
            }
            seenEvent.add(event);
            const startMs = performance.now() - started;
            const { calls: n } = await countStorageCalls(h, async () => {
                // Event Grid retries a failed delivery; count failures, and redeliver like it would.
                for (let attempt = 1; ; attempt++) {
                    try {
                        await pecEvents(event as unknown as EventGridEvent, testContext('pecEvents'));
                        break;
                    } catch {
                        failed += 1;
                        if (attempt >= 5) {
                            break;
                        }
                    }
                }
            });
            timings.push({ startMs, endMs: performance.now() - started });
            calls[kind].calls += n;
            calls[kind].events += 1;
        }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuSince(cpuBefore);
    const storage = storageCalls(h) - storageBefore;
    const blob = blobCalls(h) - blobBefore;
    const per = (k: keyof typeof calls) => (calls[k].events ? calls[k].calls / calls[k].events : 0);

    // A card names its request ("Request <id>"); the request names its PEC.
    const cardsPerPec = new Map<string, number>();
    for (const conversation of h.bot.conversations.slice(cardsBefore)) {
        const requestId = /Request ([A-Za-z0-9_-]{22})\b/.exec(JSON.stringify(conversation.parameters))?.[1];
        const pecId = requestId ? (await h.deps.requests.get(requestId))?.request.pecId : undefined;
        const key = (pecId ?? `unknown card ${conversation.id}`).toLowerCase();
        cardsPerPec.set(key, (cardsPerPec.get(key) ?? 0) + 1);
    }
    let duplicateCards = 0;
    let missedCards = 0;
    for (const p of pecs) {
        const n = cardsPerPec.get(p.pecId.toLowerCase()) ?? 0;
        duplicateCards += Math.max(0, n - 1);
        missedCards += n === 0 ? 1 : 0;
    }
    return {
        events: events.length,
        pecs: pecs.length,
        seconds,
        burstEventsPerSecond: events.length / seconds,
        burstDuplicateCards: duplicateCards,
        burstMissedCards: missedCards,
        failedDeliveries: failed,
        storageCalls: storage,
        storageCallsPerSecond: storage / seconds,
        storageCallsPer: {
            newPec: per('newPec'),
            redelivery: per('redelivery'),
            newWrite: per('newWrite'),
            irrelevant: per('irrelevant'),
        },
        blobCalls: blob,
        cpuMsPerEvent: {
            process: cpu.processMs / events.length,
            azurite: cpu.azuriteMs === undefined ? undefined : cpu.azuriteMs / events.length,
        },
        series: burstSeries(timings),
    };
}

export interface AzuriteFloor {
    calls: number;
    seconds: number;
    /** Azurite's own rate for the burst's kinds of call (conditional inserts, point reads, replaces), made raw. */
    callsPerSecond: number;
    /** Azurite's CPU per call meanwhile, ms (undefined where the kernel does not say). */
    azuriteCpuMsPerCall?: number;
}

/**
 * Azurite's throughput with nothing of the app in the way: the same concurrency as the burst, each worker making the
 * calls a new PEC makes (inserts, point reads, a conditional replace) straight through `TableClient` against a table
 * of its own. Divided by the burst's storage calls per event, it is the most events per second this Azurite could
 * carry on this machine, whatever the app did above it.
 */
export async function measureAzuriteFloor(
    h: Harness,
    options: { calls: number; concurrency: number },
): Promise<AzuriteFloor> {
    const { TableClient } = await import('@azure/data-tables');
    const table = TableClient.fromConnectionString(h.env.AzureWebJobsStorage!, `floor${Date.now()}`, {
        allowInsecureConnection: true,
    });
    await table.createTable();
    const body = 'x'.repeat(2000);
    let next = 0;
    const cpuBefore = cpuNow();
    const started = performance.now();
    // Groups of four calls, as in a new PEC's path: insert, read, replace with the ETag, insert.
    const groups = Math.ceil(options.calls / 4);
    const worker = async () => {
        for (let i = next++; i < groups; i = next++) {
            const pk = `p-${i}`;
            const created = await table.createEntity({ partitionKey: pk, rowKey: `a-${pk}`, data: body });
            await table.createEntity({ partitionKey: `r-${i}`, rowKey: `request-${i}`, data: body });
            await table.getEntity(pk, `a-${pk}`);
            await table.updateEntity({ partitionKey: pk, rowKey: `a-${pk}`, data: body }, 'Replace', {
                etag: created.etag,
            });
        }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    const azuriteMs = cpuSince(cpuBefore).azuriteMs;
    await table.deleteTable().catch(() => undefined);
    const calls = groups * 4;
    return {
        calls,
        seconds,
        callsPerSecond: calls / seconds,
        azuriteCpuMsPerCall: azuriteMs === undefined ? undefined : azuriteMs / calls,
    };
}
