import { AsyncLocalStorage } from 'node:async_hooks';
import * as diagnostics from 'node:diagnostics_channel';
import type { Harness } from '../test/harness';

let counter: { count: number; blob: number } | undefined;
// Held here, not only subscribed by name: Node 20 may collect a channel nobody references, subscribers and all.
const requestStart = diagnostics.channel('http.client.request.start');
/**
 * A tally of the storage calls made inside `countStorageCalls`: the channel's subscriber runs synchronously in the
 * caller's async context, so calls are charged to the invocation that made them even while many run at once.
 */
const tally = new AsyncLocalStorage<{ count: number }>();

function startCounting(h: Harness): { count: number; blob: number } {
    if (!counter) {
        const port = (name: string) =>
            new RegExp(`${name}Endpoint=[^;]*:(\\d+)/`).exec(h.env.AzureWebJobsStorage!)?.[1];
        const ports = [port('Table'), port('Queue')];
        const blobPort = port('Blob');
        const c = { count: 0, blob: 0 };
        requestStart.subscribe((message) => {
            const request = (message as { request: { getHeader(name: string): unknown } }).request;
            const host = String(request.getHeader('host') ?? '');
            if (ports.some((p) => p && host.endsWith(`:${p}`))) {
                c.count += 1;
                const own = tally.getStore();
                if (own) {
                    own.count += 1;
                }
            } else if (blobPort && host.endsWith(`:${blobPort}`)) {
                c.blob += 1;
            }
        });
        counter = c;
    }
    return counter;
}

/**
 * Requests this process has sent to Azurite's table and queue endpoints, counted by node's HTTP diagnostics channel
 * (Azurite keeps no log of its own). The first call starts counting.
 */
export function storageCalls(h: Harness): number {
    return startCounting(h).count;
}

/** The same for Azurite's blob endpoint (the audit anchors), which `storageCalls` leaves out. */
export function blobCalls(h: Harness): number {
    return startCounting(h).blob;
}

/** Runs `work` and counts the storage calls it (and only it) makes, however many other invocations run meanwhile. */
export async function countStorageCalls<T>(h: Harness, work: () => Promise<T>): Promise<{ value: T; calls: number }> {
    storageCalls(h);
    const own = { count: 0 };
    const value = await tally.run(own, work);
    return { value, calls: own.count };
}
