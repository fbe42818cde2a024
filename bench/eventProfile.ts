/**
 * Where a warm event's time goes: N new PECs through the real `pecEvents` handler under V8's sampling profiler, each
 * sample charged to the code it was in. The app, the emulators and their HTTP share this process (Azurite runs in its
 * own), so the profile shows what the event floor ratio measures against: how much of each event is this process
 * busy (and on what), and how much it waits.
 */
import { Session } from 'node:inspector/promises';
import type { EventGridEvent } from '@azure/functions';
import { pecEvents } from '../functions/pecEvents';
import { serverKinds } from '../src/domain/ids';
import { resourceWriteEvent, seedPendingPec, testContext, type Harness } from '../test/harness';

/** The buckets a sample falls in, first match wins. */
const categories: [name: string, test: (url: string, fn: string) => boolean][] = [
    ['waiting (idle)', (_, fn) => fn === '(idle)'],
    ['garbage collection', (_, fn) => fn === '(garbage collector)'],
    ['app (src/, functions/)', (url) => /\/(src|functions)\//.test(url) && !url.includes('node_modules')],
    ['emulators (test/)', (url) => /\/test\//.test(url) && !url.includes('node_modules')],
    ['Azure SDK and core pipeline', (url) => /node_modules\/(@azure|@typespec)\//.test(url)],
    ['other packages (zod, jose, ...)', (url) => url.includes('node_modules/')],
    ['Node.js HTTP, TLS, streams', (url) => url.startsWith('node:')],
    ['V8 and native (JSON, crypto, socket writes)', () => true],
];

export interface EventProfile {
    events: number;
    wallMsPerEvent: number;
    /** Share of the wall time this process was busy (not idle), 0 to 1. */
    busyShare: number;
    /** Milliseconds per event in each bucket, the idle time included. */
    msPerEvent: Record<string, number>;
}

interface ProfileNode {
    id: number;
    callFrame: { functionName: string; url: string };
}

export async function profileEvents(h: Harness, options: { events: number }): Promise<EventProfile> {
    let serial = 0;
    const run = async (n: number) => {
        const seeded = Array.from({ length: n }, (_, i) =>
            seedPendingPec(h.arm, serverKinds[i % serverKinds.length]!, { serverName: `prof-${(serial += 1)}` }),
        );
        const started = performance.now();
        for (const s of seeded) {
            await pecEvents(resourceWriteEvent(s.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
        }
        return performance.now() - started;
    };
    await run(serverKinds.length * 2);

    const session = new Session();
    session.connect();
    try {
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 200 });
        await session.post('Profiler.start');
        const wallMs = await run(options.events);
        const { profile } = await session.post('Profiler.stop');
        const nodes = new Map((profile.nodes as ProfileNode[]).map((n) => [n.id, n]));
        const totals = new Map<string, number>(categories.map(([name]) => [name, 0]));
        let sampledUs = 0;
        profile.samples?.forEach((id, i) => {
            const us = profile.timeDeltas?.[i] ?? 0;
            const frame = nodes.get(id)?.callFrame;
            const name =
                categories.find(([, test]) => test(frame?.url ?? '', frame?.functionName ?? ''))?.[0] ?? 'unknown';
            totals.set(name, (totals.get(name) ?? 0) + us);
            sampledUs += us;
        });
        // Samples cover the profiled span; scale them to the events' wall time so the buckets add up to it.
        const scale = sampledUs > 0 ? wallMs / (sampledUs / 1000) : 0;
        const msPerEvent = Object.fromEntries(
            [...totals].map(([name, us]) => [name, round((us / 1000) * scale, options.events)]),
        );
        const idle = msPerEvent['waiting (idle)'] ?? 0;
        const wallMsPerEvent = wallMs / options.events;
        return {
            events: options.events,
            wallMsPerEvent,
            busyShare: wallMsPerEvent > 0 ? 1 - idle / wallMsPerEvent : 0,
            msPerEvent,
        };
    } finally {
        await session.post('Profiler.disable').catch(() => undefined);
        session.disconnect();
    }
}

function round(ms: number, events: number): number {
    return Math.round((ms / events) * 100) / 100;
}
