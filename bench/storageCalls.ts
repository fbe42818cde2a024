import * as diagnostics from 'node:diagnostics_channel';
import type { Harness } from '../test/harness';

let counter: { count: number } | undefined;
// Held here, not only subscribed by name: Node 20 may collect a channel nobody references, subscribers and all.
const requestStart = diagnostics.channel('http.client.request.start');

/**
 * Requests this process has sent to Azurite's table and queue endpoints, counted by node's HTTP diagnostics channel
 * (Azurite keeps no log of its own). The first call starts counting.
 */
export function storageCalls(h: Harness): number {
    if (!counter) {
        const ports = [/TableEndpoint=[^;]*:(\d+)\//, /QueueEndpoint=[^;]*:(\d+)\//].map(
            (re) => re.exec(h.env.AzureWebJobsStorage!)?.[1],
        );
        const c = { count: 0 };
        requestStart.subscribe((message) => {
            const request = (message as { request: { getHeader(name: string): unknown } }).request;
            const host = String(request.getHeader('host') ?? '');
            if (ports.some((port) => port && host.endsWith(`:${port}`))) {
                c.count += 1;
            }
        });
        counter = c;
    }
    return counter.count;
}
