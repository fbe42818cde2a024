/**
 * Cold start: a fresh node process that loads the app and handles one relevant event end to end (ARM list and server
 * read, request insert, card post, audit) against the already-running emulators, against a fresh node process that
 * loads a bare @azure/functions app and answers one trivial HTTP request. Both go through bench/worker.cjs, which
 * plays the Functions worker, so the difference is the app alone. Runs alternate, so drift in the machine's load
 * falls on both sides.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { serverKinds } from '../src/domain/ids';
import { resourceWriteEvent, seedPendingPec, type Harness } from '../test/harness';
import { median } from './stats';

const workerScript = path.join(__dirname, 'worker.cjs');

/** One outgoing HTTP request of the invocation, as bench/worker.cjs saw it (ms since the worker script started). */
interface WorkerRequest {
    origin: string;
    method: string;
    path: string;
    startMs: number;
    endMs?: number;
    /** The TLS handshake of a new connection, when the request opened one. */
    tlsMs?: number;
    status?: number;
}

interface WorkerResult {
    /** Node's own start-up, before the worker script: the same for every app. */
    bootMs: number;
    /** require() of the entries: the bundle's (or the bare app's) module load and registrations. */
    requireMs: number;
    /** The appStart hooks (the app validates its settings there). */
    appStartMs: number;
    /** requireMs + appStartMs. */
    loadMs: number;
    invokeMs: number;
    invokeStartMs: number;
    totalMs: number;
    /** The process's CPU time (user + system) in each phase. */
    cpu: { bootMs: number; requireMs: number; appStartMs: number; invokeMs: number };
    requests: WorkerRequest[];
    response: unknown;
    errors: string[];
}

export interface ColdRun extends WorkerResult {
    /** From spawn to exit, as the parent sees it: node's own start-up included. */
    wallMs: number;
}

function runWorker(job: object, env: NodeJS.ProcessEnv): Promise<ColdRun> {
    return new Promise((resolve, reject) => {
        const started = process.hrtime.bigint();
        const child = spawn(process.execPath, [workerScript, JSON.stringify(job)], {
            env,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.on('error', reject);
        child.on('close', (code) => {
            const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
            if (code !== 0) {
                reject(new Error(`worker exited ${code}: ${err.trim()}`));
                return;
            }
            const result = JSON.parse(out) as WorkerResult;
            resolve({ ...result, wallMs });
        });
    });
}

export interface ColdStartOptions {
    runs: number;
    /** The bundled production entry: dist/package/main.js. */
    bundle: string;
    /** The tsc output's function files (dist/functions/*.js), when measured too. */
    tscDir?: string;
}

/**
 * Where one side's cold start goes, each figure the median over the runs (so the parts need not add up exactly).
 * The first invocation is split by what the process waits on: `waitMs` is the time with at least one request to an
 * emulator in flight (request written to response read, the TLS handshake of a new connection included), `appMs` the
 * rest, the app's own work with nothing outstanding (first use of the SDK clients, module initialisation, the handler).
 */
export interface ColdSplit {
    /** Spawn to exit, as the parent sees it. */
    wallMs: number;
    /** Node's own start-up before the first line of the worker script: the same for every app. */
    bootMs: number;
    /** require() of the app's entries: module load, evaluation and function registration. */
    loadMs: number;
    /** The appStart hooks: the settings' validation (zod) and policy parsing. */
    configMs: number;
    /** The first invocation, end to end. */
    invokeMs: number;
    waitMs: number;
    appMs: number;
    /** TLS handshakes of new connections (within waitMs). */
    tlsMs: number;
    /** Requests made by the first invocation. */
    calls: number;
    /** CPU time of the process (user + system) per phase: less sensitive than wall time to the machine's load. */
    cpu: { bootMs: number; loadMs: number; configMs: number; invokeMs: number };
    /** Per outside service: requests and the time with one of them in flight. */
    services: Record<string, { calls: number; waitMs: number }>;
}

export interface ColdStartResult {
    bareMs: number;
    bundledMs: number;
    tscMs: number | undefined;
    coldStartRatio: number;
    tscRatio: number | undefined;
    bundled: { loadMs: number; invokeMs: number };
    bare: { loadMs: number; invokeMs: number };
    tsc: { loadMs: number; invokeMs: number } | undefined;
    /** Where the time goes, per side: see ColdSplit. */
    split: { bare: ColdSplit; bundled: ColdSplit; tsc: ColdSplit | undefined };
    /**
     * The bundled app's median wall time less its time waiting on the emulators, over the bare app's: what the ratio
     * would be if the emulators answered at once (the app's own part: node, its code, its CPU on the requests).
     */
    withoutWaitRatio: number;
    /** The processes' CPU time (boot, load, config, first event), bundled over bare: steadier than wall time on a busy machine. */
    cpuRatio: number;
}

/** The total length of the union of the intervals: the time during which at least one of them was open. */
function unionMs(intervals: readonly (readonly [number, number])[]): number {
    let total = 0;
    let open: [number, number] | undefined;
    for (const [from, to] of [...intervals].sort((a, b) => a[0] - b[0])) {
        if (open && from <= open[1]) {
            open[1] = Math.max(open[1], to);
        } else {
            total += open ? open[1] - open[0] : 0;
            open = [from, to];
        }
    }
    return total + (open ? open[1] - open[0] : 0);
}

/** Names the emulator each origin belongs to, from the app settings the harness gave the app. */
export function serviceNames(env: Record<string, string | undefined>): Map<string, string> {
    const names = new Map<string, string>();
    const add = (name: string, url: string | undefined) => {
        if (url && URL.canParse(url)) {
            const u = new URL(url);
            names.set(`${u.protocol}//${u.host}`, name);
        }
    };
    add('token', env.IDENTITY_ENDPOINT);
    add('arm', env.ARM_ENDPOINT);
    add('bot', env.TEAMS_SERVICE_URL);
    add('graph', env.GRAPH_ENDPOINT);
    add('telemetry', /IngestionEndpoint=([^;]+)/.exec(env.APPLICATIONINSIGHTS_CONNECTION_STRING ?? '')?.[1]);
    for (const [, kind, url] of (env.AzureWebJobsStorage ?? '').matchAll(/(Table|Blob|Queue)Endpoint=([^;]+)/g)) {
        add(kind!.toLowerCase(), url);
    }
    return names;
}

const spanOf = (q: WorkerRequest) => [q.startMs, q.endMs ?? q.startMs] as const;

export function splitOf(runs: readonly ColdRun[], services: ReadonlyMap<string, string>): ColdSplit {
    const m = (f: (r: ColdRun) => number) => median(runs.map(f));
    const perService = new Map<string, { calls: number[]; waitMs: number[] }>();
    for (const run of runs) {
        const byName = new Map<string, WorkerRequest[]>();
        for (const q of run.requests) {
            const name = services.get(q.origin) ?? q.origin;
            byName.set(name, [...(byName.get(name) ?? []), q]);
        }
        for (const [name, qs] of byName) {
            const entry = perService.get(name) ?? { calls: [], waitMs: [] };
            entry.calls.push(qs.length);
            entry.waitMs.push(unionMs(qs.map(spanOf)));
            perService.set(name, entry);
        }
    }
    const waitOf = (r: ColdRun) => unionMs(r.requests.map(spanOf));
    return {
        wallMs: m((r) => r.wallMs),
        bootMs: m((r) => r.bootMs),
        loadMs: m((r) => r.requireMs),
        configMs: m((r) => r.appStartMs),
        invokeMs: m((r) => r.invokeMs),
        waitMs: m(waitOf),
        appMs: m((r) => r.invokeMs - waitOf(r)),
        tlsMs: m((r) => r.requests.reduce((sum, q) => sum + (q.tlsMs ?? 0), 0)),
        calls: m((r) => r.requests.length),
        cpu: {
            bootMs: m((r) => r.cpu.bootMs),
            loadMs: m((r) => r.cpu.requireMs),
            configMs: m((r) => r.cpu.appStartMs),
            invokeMs: m((r) => r.cpu.invokeMs),
        },
        services: Object.fromEntries(
            [...perService].map(([name, v]) => [
                name,
                // A service a run did not call counts as 0 calls in that run.
                {
                    calls: median([...v.calls, ...Array<number>(runs.length - v.calls.length).fill(0)]),
                    waitMs: median([...v.waitMs, ...Array<number>(runs.length - v.waitMs.length).fill(0)]),
                },
            ]),
        ),
    };
}

export async function measureColdStart(h: Harness, options: ColdStartOptions): Promise<ColdStartResult> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...h.env };
    // A deployed app never sees these; they would change what node loads.
    delete env.NODE_OPTIONS;
    delete env.TS_NODE_PROJECT;
    const bareJob = {
        entries: [path.join(__dirname, 'bareApp.cjs')],
        functionName: 'hello',
        inputData: {
            http: { method: 'GET', url: 'http://localhost:7071/api/hello', headers: {}, query: {}, params: {} },
        },
    };
    const tscEntries = options.tscDir
        ? readdirSync(options.tscDir)
              .filter((f) => f.endsWith('.js'))
              .sort()
              .map((f) => path.join(options.tscDir!, f))
        : undefined;
    const eventJob = (entries: string[]) => {
        const kind = serverKinds[Math.floor(Math.random() * serverKinds.length)]!;
        const seeded = seedPendingPec(h.arm, kind);
        return {
            entries,
            functionName: 'pecEvents',
            inputData: { json: JSON.stringify(resourceWriteEvent(seeded.pecId)) },
            pecId: seeded.pecId,
        };
    };
    const services = serviceNames(env);
    const cardsBefore = h.bot.cards().length;
    const bare: ColdRun[] = [];
    const bundled: ColdRun[] = [];
    const tsc: ColdRun[] = [];
    // One warm-up of each, not counted: the first spawn pays for the OS's file cache.
    await runWorker(bareJob, env);
    await runWorker(eventJob([options.bundle]), env);
    for (let i = 0; i < options.runs; i++) {
        bare.push(await runWorker(bareJob, env));
        bundled.push(await runWorker(eventJob([options.bundle]), env));
        if (tscEntries) {
            tsc.push(await runWorker(eventJob(tscEntries), env));
        }
    }
    const expectedCards = 1 + options.runs * (tscEntries ? 2 : 1);
    const cards = h.bot.cards().length - cardsBefore;
    if (cards !== expectedCards) {
        const errors = [...bundled, ...tsc].flatMap((r) => r.errors).slice(0, 3);
        throw new Error(`cold start: ${cards} cards posted for ${expectedCards} events ${errors.join(' | ')}`);
    }
    const summary = (runs: ColdRun[]) => ({
        loadMs: median(runs.map((r) => r.loadMs)),
        invokeMs: median(runs.map((r) => r.invokeMs)),
    });
    const bareMs = median(bare.map((r) => r.wallMs));
    const bundledMs = median(bundled.map((r) => r.wallMs));
    const tscMs = tscEntries ? median(tsc.map((r) => r.wallMs)) : undefined;
    const split = {
        bare: splitOf(bare, services),
        bundled: splitOf(bundled, services),
        tsc: tscEntries ? splitOf(tsc, services) : undefined,
    };
    const cpuTotal = (runs: ColdRun[]) =>
        median(runs.map((r) => r.cpu.bootMs + r.cpu.requireMs + r.cpu.appStartMs + r.cpu.invokeMs));
    return {
        bareMs,
        bundledMs,
        tscMs,
        coldStartRatio: bundledMs / bareMs,
        tscRatio: tscMs === undefined ? undefined : tscMs / bareMs,
        bundled: summary(bundled),
        bare: summary(bare),
        tsc: tscEntries ? summary(tsc) : undefined,
        split,
        withoutWaitRatio: median(bundled.map((r) => r.wallMs - unionMs(r.requests.map(spanOf)))) / bareMs,
        cpuRatio: cpuTotal(bundled) / cpuTotal(bare),
    };
}

/** One line per side for the bench's output and the README table: where the median cold start goes. */
export function describeSplit(name: string, s: ColdSplit): string {
    const r = (v: number) => Math.round(v);
    const services = Object.entries(s.services)
        .sort((a, b) => b[1].waitMs - a[1].waitMs)
        .map(([service, v]) => `${service} ${v.calls}×/${r(v.waitMs)}`)
        .join(', ');
    return (
        `${name}: wall ${r(s.wallMs)} ms (spawn to exit) ⊃ node boot ${r(s.bootMs)} + load ${r(s.loadMs)} + ` +
        `config ${r(s.configMs)} + ` +
        `first event ${r(s.invokeMs)} (waiting on ${s.calls} calls ${r(s.waitMs)}, TLS ${r(s.tlsMs)} of it; app ${r(s.appMs)})` +
        `; CPU load ${r(s.cpu.loadMs)}, config ${r(s.cpu.configMs)}, first event ${r(s.cpu.invokeMs)}` +
        (services ? `; calls/ms in flight: ${services}` : '')
    );
}
