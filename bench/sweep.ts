/**
 * The sweep at scale: 50 subscriptions, 10,000 servers of the four watched database kinds, 20,000 connections of which
 * 200 are Pending, on the ARM emulator with 30 ms added to every call and ARM's read throttling (a bucket of 250 reads
 * per subscription refilled at 25 a second, 429 with Retry-After when empty), storage on Azurite.
 *
 * The estate is in its steady state: every scope's baseline is taken and every Approved connection is accounted for
 * (marked), so the sweep judges nothing; the 200 Pending connections are new to it (their events were lost), so it
 * records when it first saw each and leaves them their grace time. One timer run of the sweep then runs in a fresh
 * node process on the compiled app (bench/sweepChild.cjs), whose RSS is sampled every 20 ms: that process holds the
 * app only, the emulators and Azurite live elsewhere.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { kindInfo, type ServerKind } from '../src/domain/ids';
import { defaultWatchedKinds } from '../src/domain/resourceKinds';
import { settleAll } from '../src/workflow/concurrency';
import type { ArmRequest } from '../test/emulators/arm';
import { closeSharedTokenEmulator, ids, privateEndpointId, startHarness, type Harness } from '../test/harness';
import globalSetup from '../test/setup/globalSetup';

export interface SweepBenchOptions {
    subscriptions: number;
    servers: number;
    connectionsPerServer: number;
    pending: number;
    latencyMs: number;
    pageSize: number;
    /** The compiled app (npm run build's output). */
    dist: string;
}

export interface SweepBenchResult {
    subscriptions: number;
    kinds: number;
    servers: number;
    connections: number;
    pending: number;
    sweepSeconds: number;
    /** Reads ARM answered during the run (429s not included). */
    sweepArmReads: number;
    /** Of those, pages of the subscription-wide server lists (first pages included). */
    listPages: number;
    /** Reads of single servers or connections. */
    perItemReads: number;
    /** 2 × subscriptions × kinds + the list pages beyond the first of each scope. */
    readGoal: number;
    /** 429 answers, and reads sent again before the Retry-After had elapsed. */
    throttled: number;
    earlyRetries: number;
    /** The most reads one subscription spent in the run (its bucket holds 250). */
    maxReadsPerSubscription: number;
    sweepPeakRssMb: number;
    startRssMb: number;
    loadedRssMb: number;
    setupSeconds: number;
    parts: SweepParts;
    report: {
        servers: number;
        pendingPecs: number;
        waiting: number;
        errors: unknown[];
        blind: boolean;
        scopes: { from: number; to: number; of: number; finished: boolean };
    };
}

/** The sweep's parts timed alone after the run, in the same process (not in the figures). */
export interface SweepParts {
    listingSeconds: number;
    requestsSeconds: number;
    requestsInFlight: number;
    marksScanSeconds: number;
    marks: number;
}

interface ChildResult {
    seconds: number;
    startRssMb: number;
    loadedRssMb: number;
    peakRssMb: number;
    report: SweepBenchResult['report'];
    warnings: string[];
}

/**
 * Runs the child; `onSwept` is called as soon as its first line (the sweep's result) arrives, before it times the
 * parts, so the caller can count the sweep's ARM reads alone.
 */
function runChild(
    dist: string,
    env: NodeJS.ProcessEnv,
    onSwept: () => void,
): Promise<{ result: ChildResult; parts: SweepParts }> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(__dirname, 'sweepChild.cjs'), dist], {
            env,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        let swept = false;
        child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            if (!swept && out.includes('\n')) {
                swept = true;
                onSwept();
            }
        });
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.on('error', reject);
        child.on('close', (code) => {
            if (code !== 0) {
                reject(new Error(`sweep child exited ${code}: ${err.trim().slice(0, 2000)}`));
                return;
            }
            const [result = '{}', parts = '{}'] = out.trim().split('\n');
            resolve({ result: JSON.parse(result) as ChildResult, parts: JSON.parse(parts) as SweepParts });
        });
    });
}

/** A UUID that reads as what it is in logs: subscription n of the estate. */
const subscriptionOf = (n: number) => `5ee70000-0000-4000-8000-${String(n).padStart(12, '0')}`;

export async function measureSweep(options: SweepBenchOptions): Promise<SweepBenchResult> {
    if (!process.env.AZURITE_CONNECTION_STRING) {
        await globalSetup();
    }
    const subscriptions = Array.from({ length: options.subscriptions }, (_, i) => subscriptionOf(i + 1));
    const kinds: readonly ServerKind[] = defaultWatchedKinds;
    const h: Harness = await startHarness({
        settings: {
            WATCHED_SUBSCRIPTION_IDS: subscriptions.join(','),
            WATCHED_RESOURCE_KINDS: kinds.join(','),
            TRUSTED_SUBSCRIPTION_IDS: [ids.ours, ...subscriptions].join(','),
        },
        arm: {
            latencyMs: options.latencyMs,
            readThrottle: { bucket: 250, refillPerSecond: 25 },
            pageSize: options.pageSize,
        },
    });
    try {
        const setupStarted = Date.now();
        const scopes = subscriptions.flatMap((subscriptionId) => kinds.map((kind) => ({ subscriptionId, kind })));
        const serversPerScope = Math.ceil(options.servers / scopes.length);
        const pendingEvery = Math.max(1, Math.floor(options.servers / options.pending));
        const approved: string[] = [];
        let serial = 0;
        let pending = 0;
        let connections = 0;
        for (const { subscriptionId, kind } of scopes) {
            const { provider, type } = kindInfo[kind];
            for (let n = 0; n < serversPerScope && serial < options.servers; n++, serial++) {
                const serverId = h.arm.addServer({
                    subscriptionId,
                    resourceGroup: `rg-${n % 10}`,
                    provider,
                    type,
                    name: `db-${kind.replace(/-.*$/, '')}-${serial}`,
                    tags: { environment: 'prod' },
                });
                for (let c = 0; c < options.connectionsPerServer; c++) {
                    const isPending = c === 0 && serial % pendingEvery === 0 && pending < options.pending;
                    const pecId = h.arm.addPec(serverId, {
                        name: `pe-${serial}-${c}.${randomUUID()}`,
                        privateEndpointId: privateEndpointId(subscriptionId, `pe-${serial}-${c}`),
                        status: isPending ? 'Pending' : 'Approved',
                        description: isPending ? 'please' : 'approved earlier',
                    });
                    connections++;
                    if (isPending) {
                        pending++;
                    } else {
                        approved.push(pecId);
                    }
                }
            }
        }
        // Steady state: baselines taken, every Approved connection accounted for (the gate approved it).
        const marks = h.deps.marks!;
        const at = new Date().toISOString();
        await settleAll(scopes, 16, ({ subscriptionId, kind }) => marks.markBaselined(subscriptionId, kind, at));
        const marked = await settleAll(approved, 64, (pecId) =>
            marks.insertIfNone({ pecId, source: 'gate', requestId: randomUUID(), at }),
        );
        const failedMarks = marked.filter((m) => m.status === 'rejected').length;
        if (failedMarks > 0) {
            throw new Error(`${failedMarks} connection marks could not be written to Azurite`);
        }
        const setupSeconds = (Date.now() - setupStarted) / 1000;

        const from = h.arm.requests.length;
        const throttledBefore = h.arm.throttle.throttled;
        const earlyBefore = h.arm.throttle.early;
        const readsBefore = new Map(h.arm.throttle.reads);
        let counted: { requests: ArmRequest[]; reads: Map<string, number>; throttled: number; early: number } = {
            requests: [],
            reads: new Map(),
            throttled: 0,
            early: 0,
        };
        const { result: child, parts } = await runChild(options.dist, { ...process.env, ...h.env }, () => {
            counted = {
                requests: h.arm.requests.slice(from),
                reads: new Map(h.arm.throttle.reads),
                throttled: h.arm.throttle.throttled,
                early: h.arm.throttle.early,
            };
        });
        const gets = counted.requests.filter((r) => r.method === 'GET');
        const listPages = gets.filter((r) => /^\/subscriptions\/[^/]+\/providers\/[^/]+\/[^/]+$/i.test(r.path)).length;
        const perSubscription = [...counted.reads].map(([sub, n]) => n - (readsBefore.get(sub) ?? 0));
        const sweepArmReads = perSubscription.reduce((a, b) => a + b, 0);
        return {
            subscriptions: subscriptions.length,
            kinds: kinds.length,
            servers: serial,
            connections,
            pending,
            sweepSeconds: child.seconds,
            sweepArmReads,
            listPages,
            perItemReads: sweepArmReads - listPages,
            readGoal: 2 * scopes.length + Math.max(0, listPages - scopes.length),
            throttled: counted.throttled - throttledBefore,
            earlyRetries: counted.early - earlyBefore,
            maxReadsPerSubscription: Math.max(0, ...perSubscription),
            sweepPeakRssMb: child.peakRssMb,
            startRssMb: child.startRssMb,
            loadedRssMb: child.loadedRssMb,
            setupSeconds,
            report: child.report,
            parts,
        };
    } finally {
        await h.close();
        await closeSharedTokenEmulator();
    }
}
