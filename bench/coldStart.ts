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

interface WorkerResult {
    loadMs: number;
    invokeMs: number;
    totalMs: number;
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

export interface ColdStartResult {
    bareMs: number;
    bundledMs: number;
    tscMs: number | undefined;
    coldStartRatio: number;
    tscRatio: number | undefined;
    bundled: { loadMs: number; invokeMs: number };
    bare: { loadMs: number; invokeMs: number };
    tsc: { loadMs: number; invokeMs: number } | undefined;
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
    return {
        bareMs,
        bundledMs,
        tscMs,
        coldStartRatio: bundledMs / bareMs,
        tscRatio: tscMs === undefined ? undefined : tscMs / bareMs,
        bundled: summary(bundled),
        bare: summary(bare),
        tsc: tscEntries ? summary(tsc) : undefined,
    };
}
