/**
 * `dashboardPageMs`: the dashboard's page time against Azurite with a generated table of many requests (100,000 in a
 * full run). The table is written the way the app's store and index leave it (request rows, index rows, a few audit
 * trails with bypasses among them), then the registered handler is called the way the host calls it, signed in
 * through Easy Auth, for the pages people open: the first page, the next pages, filters, a date range, one request.
 *
 *   npx tsx bench/dashboard.ts [--requests N]    # this module alone (it starts Azurite and the emulators)
 */
import { randomBytes } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { dashboard } from '../functions/dashboard';
import { canonicalAuditPayload, genesisHash, type AuditEntry } from '../src/domain/audit';
import { createHash } from 'node:crypto';
import { openRequest, type ApprovalRequest, type RequestStatus } from '../src/domain/request';
import { auditRowKey } from '../src/storage/auditLog';
import { indexEntitiesOf, indexTableName, markIndexCaughtUp } from '../src/storage/requestIndex';
import { requestKeys } from '../src/storage/requestStore';
import { CLIENT_PRINCIPAL_HEADER, encodeClientPrincipal } from '../src/web/easyAuth';
import { ids, people, testContext, type Harness } from '../test/harness';
import { lazyTable } from '../test/storage/azuriteTable';
import { median, round } from './stats';

export interface DashboardBench {
    requests: number;
    generateSeconds: number;
    /** Page loads measured. */
    loads: number;
    dashboardPageMs: number;
    medianPageMs: number;
    /** By kind of page: median and p95. */
    byPage: Record<string, { medianMs: number; p95Ms: number }>;
    /** The summary computed afresh (it is cached for a minute), median of a few. */
    summaryMs: number;
}

const DAY = 86_400_000;
const kinds = ['postgres-flexible', 'mysql-flexible', 'postgres-single', 'mysql-single'] as const;
const providers: Record<string, string> = {
    'postgres-flexible': 'Microsoft.DBforPostgreSQL/flexibleServers',
    'mysql-flexible': 'Microsoft.DBforMySQL/flexibleServers',
    'postgres-single': 'Microsoft.DBforPostgreSQL/servers',
    'mysql-single': 'Microsoft.DBforMySQL/servers',
};

/** A seeded generator, so every run writes the same table. */
function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function generate(count: number, now: number): ApprovalRequest[] {
    const random = rng(20);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    const requests: ApprovalRequest[] = [];
    for (let i = 0; i < count; i++) {
        // Spread over a year, the newest last; the last 200 are still pending.
        const age = ((count - i) / count) * 365 * DAY;
        const createdAt = new Date(now - age - random() * 3_600_000);
        const kind = pick(kinds);
        const server = `db-${String(Math.floor(random() * 400)).padStart(3, '0')}`;
        const serverId = `/subscriptions/${ids.ours}/resourceGroups/rg-data/providers/${providers[kind]}/${server}`;
        const roll = random();
        const peSub = roll < 0.8 ? ids.ours : roll < 0.95 ? ids.foreign : undefined;
        const name = `pe-${i}.${randomBytes(4).toString('hex')}`;
        const request = openRequest({
            id: randomBytes(16).toString('base64url'),
            pecId: `${serverId}/privateEndpointConnections/${name}`,
            facts: {
                serverKind: kind,
                serverId,
                serverLocation: 'westeurope',
                publicNetworkAccess: 'Disabled',
                serverTags: { env: 'prod' },
                pecName: name,
                privateEndpointId: `/subscriptions/${peSub ?? 'x'}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe`,
                ...(peSub ? { privateEndpointSubscriptionId: peSub } : {}),
                privateEndpointTrusted: peSub === ids.ours,
                requestMessage: 'Generated for the dashboard benchmark',
                approvedPecCount: 2,
                approvedUntrustedPecCount: 0,
            },
            requester: { upn: `user${Math.floor(random() * 500)}@contoso.com`, name: 'Generated User' },
            correlationId: `bench-${i}`,
            now: createdAt,
        });
        if (i >= count - 200) {
            requests.push(request);
            continue;
        }
        const decidedAt = new Date(createdAt.getTime() + random() * 2 * DAY);
        const action = random() < 0.85 ? 'approve' : 'reject';
        const r = random();
        const status: RequestStatus =
            r < 0.01
                ? 'failed'
                : r < 0.04
                  ? 'expired'
                  : r < 0.06
                    ? 'superseded'
                    : i >= count - 220
                      ? 'decided'
                      : 'applied';
        const decided: ApprovalRequest =
            status === 'expired' || status === 'superseded'
                ? {
                      ...request,
                      status,
                      updatedAt: decidedAt.toISOString(),
                      outcome: { at: decidedAt.toISOString(), reason: 'generated' },
                  }
                : {
                      ...request,
                      status,
                      updatedAt: decidedAt.toISOString(),
                      decision: {
                          action,
                          by: { upn: `approver${Math.floor(random() * 20)}@contoso.com`, name: 'Approver' },
                          text: 'generated',
                          at: decidedAt.toISOString(),
                      },
                  };
        requests.push(decided);
    }
    return requests;
}

async function inParallel<T>(
    items: readonly T[],
    concurrency: number,
    run: (item: T) => Promise<unknown>,
): Promise<void> {
    let next = 0;
    await Promise.all(
        Array.from({ length: concurrency }, async () => {
            while (next < items.length) {
                await run(items[next++]!);
            }
        }),
    );
}

/** Request rows one by one (each its own partition); index rows in batches of one partition each. */
async function writeTable(
    table: TableClient,
    index: TableClient,
    audit: TableClient,
    requests: ApprovalRequest[],
): Promise<void> {
    await inParallel(requests, 32, (request) =>
        table.createEntity({
            ...requestKeys(request.id),
            data: JSON.stringify(request),
            status: request.status,
            pecId: request.pecId,
            createdAt: request.createdAt,
            sweep: request.status === 'pending' || request.status === 'decided',
            writeId: 'bench',
        }),
    );
    const byPartition = new Map<string, TransactionAction[]>();
    for (const request of requests) {
        for (const entity of indexEntitiesOf(request)) {
            const list = byPartition.get(entity.partitionKey) ?? [];
            list.push([
                'upsert',
                entity as unknown as Record<string, unknown> & { partitionKey: string; rowKey: string },
                'Replace',
            ]);
            byPartition.set(entity.partitionKey, list);
        }
    }
    const batches: TransactionAction[][] = [];
    for (const actions of byPartition.values()) {
        for (let i = 0; i < actions.length; i += 100) {
            batches.push(actions.slice(i, i + 100));
        }
    }
    await inParallel(batches, 8, (batch) => index.submitTransaction(batch));
    // Audit trails for one request in ten (a real trail table is larger still; the page reads one trail), and a few
    // bypasses, which the summary counts.
    const trails = requests.filter((_r, i) => i % 10 === 0 || i >= requests.length - 20);
    await inParallel(trails, 32, async (request) => {
        const entries = [trailEntry(request, 1, 'requested', genesisHash)];
        if (request.decision) {
            entries.push(trailEntry(request, 2, 'decided', entries[0]!.hash));
        }
        await audit.submitTransaction(
            entries.map((entry) => [
                'create',
                {
                    partitionKey: request.id,
                    rowKey: auditRowKey(request.id, entry.seq),
                    entry: JSON.stringify(entry),
                    action: entry.action,
                    at: entry.at,
                },
            ]),
        );
    });
    await inParallel(trails.slice(0, 30), 8, (request) =>
        audit.createEntity({
            partitionKey: `${request.id}`,
            rowKey: auditRowKey(request.id, 9),
            entry: '{}',
            action: 'bypassed',
            at: new Date().toISOString(),
        }),
    );
}

function trailEntry(
    request: ApprovalRequest,
    seq: number,
    action: 'requested' | 'decided',
    prevHash: string,
): AuditEntry {
    const unsigned = {
        requestId: request.id,
        action,
        actor: { kind: 'system' as const },
        correlationId: request.correlationId,
        seq,
        at: seq === 1 ? request.createdAt : (request.decision?.at ?? request.updatedAt),
        prevHash,
    };
    return { ...unsigned, hash: createHash('sha256').update(canonicalAuditPayload(unsigned)).digest('hex') };
}

async function load(query: string): Promise<{ ms: number; status: number; body: string }> {
    const request = new HttpRequest({
        url: `https://pec-gate.example.net/api/dashboard${query ? `?${query}` : ''}`,
        method: 'GET',
        headers: { [CLIENT_PRINCIPAL_HEADER]: encodeClientPrincipal({ ...people.alice, tenantId: ids.tenant }) },
    });
    const started = performance.now();
    const response = await dashboard(request, testContext('dashboard'));
    const ms = performance.now() - started;
    return { ms, status: response.status ?? 200, body: String(response.body ?? '') };
}

function p95(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)] ?? Number.NaN;
}

/** The bench's row: `dashboardPageMs`, the p95 over every page load, with the details beside it. */
export async function benchDashboard(
    h: Harness,
    quick: boolean,
    add: (field: string, value: number, goal: string, met: boolean, note?: string) => void,
    extra: Record<string, unknown>,
): Promise<void> {
    console.log(`Dashboard: page loads against a generated table of ${quick ? '10,000' : '100,000'} requests...`);
    const result = await measureDashboard(h, { requests: quick ? 10_000 : 100_000, rounds: quick ? 5 : 10 });
    extra.dashboard = result;
    add(
        'dashboardPageMs',
        result.dashboardPageMs,
        '≤ 300 (p95)',
        result.dashboardPageMs <= 300,
        `${result.requests} requests, ${result.loads} loads, median ${result.medianPageMs} ms; summary afresh ${result.summaryMs} ms`,
    );
}

export async function measureDashboard(
    h: Harness,
    options: { requests: number; rounds: number },
): Promise<DashboardBench> {
    const authBefore = process.env.WEBSITE_AUTH_ENABLED;
    process.env.WEBSITE_AUTH_ENABLED = 'true';
    try {
        return await measure(h, options);
    } finally {
        if (authBefore === undefined) {
            delete process.env.WEBSITE_AUTH_ENABLED;
        } else {
            process.env.WEBSITE_AUTH_ENABLED = authBefore;
        }
    }
}

async function measure(h: Harness, options: { requests: number; rounds: number }): Promise<DashboardBench> {
    const table = await lazyTable(h.config.REQUESTS_TABLE)();
    const audit = await lazyTable(h.config.AUDIT_TABLE)();
    const index = await lazyTable(indexTableName(h.config.REQUESTS_TABLE))();
    await index.createTable();
    await table.createTable();
    await audit.createTable();
    const now = Date.now();
    const requests = generate(options.requests, now);
    const started = performance.now();
    await writeTable(table, index, audit, requests);
    // The table was written as the store and its hook leave it: nothing for the catch-up to do.
    await markIndexCaughtUp(index, new Date());
    const generateSeconds = (performance.now() - started) / 1000;

    const first = await load('');
    if (first.status !== 200 || !first.body.includes('id="requests"')) {
        throw new Error(`The dashboard did not answer with its page: ${first.status}`);
    }
    const cursor = (body: string) => /href="[^"]*after=([^"&]+)[^"]*" rel="next"/.exec(body)?.[1];
    const trailed = requests.filter((_r, i) => i % 10 === 0);
    const timings: Record<string, number[]> = {};
    const record = (page: string, ms: number) => (timings[page] ??= []).push(ms);
    const day = (offsetDays: number) => new Date(now - offsetDays * DAY).toISOString().slice(0, 10);
    for (let round_ = 0; round_ < options.rounds; round_++) {
        const firstPage = await load('');
        record('first page', firstPage.ms);
        let after = cursor(firstPage.body);
        for (let n = 0; n < 3 && after; n++) {
            const next = await load(`after=${after}`);
            record('next page', next.ms);
            after = cursor(next.body);
        }
        record('state=failed', (await load('status=failed')).ms);
        record('origin=foreign', (await load('origin=foreign')).ms);
        record(
            'kind+server',
            (await load(`kind=mysql-flexible&server=db-${String(round_ % 400).padStart(3, '0')}`)).ms,
        );
        record('requester prefix', (await load(`requester=user${round_ % 50}`)).ms);
        record('date range', (await load(`from=${day(200)}&to=${day(190)}`)).ms);
        record('one request', (await load(`request=${trailed[(round_ * 97) % trailed.length]!.id}`)).ms);
    }
    const all = Object.values(timings).flat();

    // The summary's own cost: computed afresh (the page caches it for a minute).
    const { summarize } = await import('../src/web/dashboard');
    const { getDashboardDeps } = await import('../src/web/dashboardDeps');
    const summaryTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
        const s = performance.now();
        await summarize(getDashboardDeps(), { info: () => undefined, warn: () => undefined, error: () => undefined });
        summaryTimes.push(performance.now() - s);
    }
    return {
        requests: options.requests,
        generateSeconds: round(generateSeconds, 1),
        loads: all.length,
        dashboardPageMs: round(p95(all), 1),
        medianPageMs: round(median(all), 1),
        byPage: Object.fromEntries(
            Object.entries(timings).map(([page, ms]) => [
                page,
                { medianMs: round(median(ms), 1), p95Ms: round(p95(ms), 1) },
            ]),
        ),
        summaryMs: round(median(summaryTimes), 1),
    };
}

if (require.main === module) {
    void (async () => {
        const { startWorld, stopAzurite } = await import('./env');
        const at = process.argv.indexOf('--requests');
        const requests = at > 0 ? Number(process.argv[at + 1]) : 100_000;
        const world = await startWorld();
        try {
            const result = await measureDashboard(world.h, { requests, rounds: 10 });
            console.log(JSON.stringify(result, null, 2));
        } finally {
            await world.close();
            await stopAzurite();
        }
    })().catch((err: unknown) => {
        console.error(err);
        process.exit(1);
    });
}
