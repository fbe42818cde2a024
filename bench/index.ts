/**
 * `npm run bench`: the numbers the issues ask for, measured on this machine in one run, printed as a table and written
 * to bench-results.json at the repository root. Nothing here asserts a time: the goals are reported beside the
 * figures, and the exit code is non-zero only when a measurement could not be made or a correctness figure (lost PEC,
 * double decision, duplicate or missed card, fuzz crash, model violation) is not zero.
 *
 *   npm run bench                           # everything (the 10,000-step model run is most of the time)
 *   npm run bench -- --quick                # smaller runs, to try a change
 *   npm run bench -- --only burst,events    # some sections; their figures replace those in bench-results.json
 *   npm run bench -- --list                 # the section names
 *
 * Each section is an entry in `sections` below, with the settings of the world (Azurite and the emulators) it runs
 * in; sections that share settings share one world, in the order listed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as prettier from 'prettier';
import { buildPackage } from '../scripts/package';
import { closeSharedTokenEmulator, type Harness } from '../test/harness';
import { runFaultScenario, startFaultHarness } from '../test/reliability/faultRun';
import { runFuzz } from '../test/reliability/fuzz';
import { runModel } from '../test/reliability/model';
import { measureAzuriteFloor, measureBurst } from './burst';
import { measureApplies, measureClicks } from './decisionPath';
import { describeSplit, measureColdStart } from './coldStart';
import { benchDashboard } from './dashboard';
import { startAzurite, startWorld, stopAzurite } from './env';
import { burstChartSvg, writeBurstChart } from './chart';
import { profileEvents } from './eventProfile';
import { countPathRoundTrips, measureEventOverhead, type PathRoundTrips } from './eventOverhead';
import { round } from './stats';
import { measureSweep } from './sweep';

const root = path.resolve(__dirname, '..');
const quick = process.argv.includes('--quick');

interface Row {
    field: string;
    value: number;
    goal: string;
    met: boolean;
    note: string;
}

export interface BenchContext {
    quick: boolean;
    /** The package built for this run (the bundle cold start loads). */
    pkg: { stagingDir: string; zipBytes: number; bundleBytes: number };
    /** Reports one figure: its name in bench-results.json, its value, the goal in words, whether it is met. */
    add(field: string, value: number, goal: string, met: boolean, note?: string): void;
    /** Details kept under `details` in bench-results.json. */
    extra: Record<string, unknown>;
}

interface Section {
    name: string;
    /**
     * The world it runs in: app settings for a harness on Azurite ({} for the defaults), or 'own' for a section that
     * starts what it needs itself (the fault run's harness, or nothing).
     */
    world: Record<string, string> | 'own';
    run(ctx: BenchContext, h: Harness | undefined): Promise<void>;
}

const need = (h: Harness | undefined): Harness => {
    if (!h) {
        throw new Error('this section needs a harness');
    }
    return h;
};

const sections: Section[] = [
    {
        name: 'package',
        world: 'own',
        async run(ctx) {
            ctx.add(
                'zipBytes',
                ctx.pkg.zipBytes,
                '≤ 5,000,000',
                ctx.pkg.zipBytes <= 5_000_000,
                `app.js ${ctx.pkg.bundleBytes} bytes`,
            );
        },
    },
    {
        name: 'coldStart',
        world: {},
        async run(ctx, h) {
            console.log('Cold start: fresh node processes, alternating...');
            const cold = await measureColdStart(need(h), {
                runs: ctx.quick ? 5 : 15,
                bundle: path.join(ctx.pkg.stagingDir, 'main.js'),
                tscDir: path.join(root, 'dist', 'functions'),
            });
            ctx.extra.coldStart = cold;
            console.log(`  ${describeSplit('bare', cold.split.bare)}`);
            console.log(`  ${describeSplit('bundled', cold.split.bundled)}`);
            console.log(
                `  bundled/bare: CPU ${round(cold.cpuRatio)}×; wall less the wait on the emulators ${round(cold.withoutWaitRatio)}×`,
            );
            ctx.add(
                'coldStartRatio',
                round(cold.coldStartRatio),
                '≤ 1.5',
                cold.coldStartRatio <= 1.5,
                `bundled ${round(cold.bundledMs, 1)} ms vs bare ${round(cold.bareMs, 1)} ms; tsc output ${round(cold.tscMs ?? Number.NaN, 1)} ms (${round(cold.tscRatio ?? Number.NaN)}×)`,
            );
        },
    },
    {
        name: 'events',
        world: {},
        async run(ctx, h) {
            console.log('Event overhead: pecEvents against the floor and against the same round trips made raw...');
            const overhead = await measureEventOverhead(need(h), {
                events: ctx.quick ? 100 : 400,
                rounds: ctx.quick ? 5 : 10,
            });
            const paths = await countPathRoundTrips(need(h));
            const profile = await profileEvents(need(h), { events: ctx.quick ? 50 : 200 });
            console.log(
                `  profile of ${profile.events} events (${round(profile.wallMsPerEvent)} ms each, this process busy ` +
                    `${Math.round(profile.busyShare * 100)} % of it): ` +
                    Object.entries(profile.msPerEvent)
                        .map(([name, ms]) => `${name} ${ms}`)
                        .join(', '),
            );
            ctx.extra.eventProfile = profile;
            ctx.extra.eventOverhead = overhead;
            ctx.extra.roundTripsByPath = paths;
            ctx.add(
                'eventFloorRatio',
                round(overhead.eventFloorRatio),
                '≤ 1.3',
                overhead.eventFloorRatio <= 1.3,
                `${round(overhead.appPerEventMs)} ms per event vs ${round(overhead.floorPerEventMs)} ms for ARM PEC read, ` +
                    `server read, one insert, one card post in a row; ${round(overhead.eventFloorRatioParallel)}× ` +
                    `with the two reads in parallel (${round(overhead.floorParallelPerEventMs)} ms)`,
            );
            ctx.add(
                'eventOverheadRatio',
                round(overhead.eventOverheadRatio),
                '≤ 1.3',
                overhead.eventOverheadRatio <= 1.3,
                `vs the app's own calls made raw, ${round(overhead.rawPerEventMs)} ms; ${round(overhead.appRoundTrips, 1)} calls per event`,
            );
            const describe = (p: PathRoundTrips) =>
                `${p.total} (ARM ${p.arm}, Bot ${p.bot}, Graph ${p.graph}, storage ${p.storage})`;
            for (const [name, p] of Object.entries(paths) as [keyof typeof paths, PathRoundTrips][]) {
                const goal = name === 'redelivery' ? '≤ 1 storage read, 0 ARM' : name === 'newPec' ? 'floor 4' : '—';
                const met = name === 'redelivery' ? p.storage <= 1 && p.arm === 0 && p.bot === 0 : true;
                ctx.add(`roundTrips.${name}`, p.total, goal, met, describe(p));
            }
        },
    },
    {
        name: 'burst',
        world: {},
        async run(ctx, h) {
            console.log('Burst: concurrent events with duplicates and irrelevant ones...');
            const burst = await measureBurst(need(h), {
                events: ctx.quick ? 1000 : 5000,
                duplicateShare: 0.3,
                irrelevantShare: 0.1,
                concurrency: 64,
                seed: 6,
            });
            const { series, ...figures } = burst;
            ctx.extra.burst = { ...figures, p50: series.p50, p95: series.p95, p99: series.p99 };
            const per = burst.storageCallsPer;
            ctx.add(
                'burstEventsPerSecond',
                round(burst.burstEventsPerSecond, 0),
                '≥ 500',
                burst.burstEventsPerSecond >= 500,
                `${burst.events} events, ${burst.pecs} PECs in ${round(burst.seconds, 1)} s; storage calls per new PEC ` +
                    `${round(per.newPec, 1)}, per redelivery ${round(per.redelivery, 1)}, per new write ` +
                    `${round(per.newWrite, 1)}; ${round(burst.storageCallsPerSecond, 0)} storage calls/s; latency p50 ` +
                    `${round(series.p50, 0)} ms, p95 ${round(series.p95, 0)} ms, p99 ${round(series.p99, 0)} ms`,
            );
            // What Azurite alone carries here, and so the most events per second the burst's storage calls allow.
            const azurite = await measureAzuriteFloor(need(h), { calls: ctx.quick ? 4000 : 12_000, concurrency: 64 });
            const callsPerEvent = burst.storageCalls / burst.events;
            const ceiling = azurite.callsPerSecond / callsPerEvent;
            ctx.extra.burstAzurite = { ...azurite, callsPerEvent, ceilingEventsPerSecond: ceiling };
            ctx.add(
                'burstAzuriteCeiling',
                round(ceiling, 0),
                '—',
                true,
                `Azurite alone: ${round(azurite.callsPerSecond, 0)} table calls/s at concurrency 64; the burst makes ` +
                    `${round(callsPerEvent, 2)} per event, so no app could pass this many events/s on this Azurite`,
            );
            // Where the two cores went: when they were both busy, the machine is the bound, and the CPU per event
            // says how far each side would have to fall for the goal.
            const cores = os.cpus().length;
            const cpu = burst.cpuMsPerEvent;
            if (cpu.azurite !== undefined) {
                const perEvent = cpu.process + cpu.azurite;
                const busy = (perEvent * burst.events) / (burst.seconds * 1000 * cores);
                ctx.extra.burstCpu = { ...cpu, cores, busy, azuriteCpuMsPerCallAlone: azurite.azuriteCpuMsPerCall };
                ctx.add(
                    'burstCpuCeiling',
                    round((cores * 1000) / perEvent, 0),
                    '—',
                    true,
                    `CPU per event: ${round(cpu.process, 2)} ms in the app's process (with the ARM, Bot Connector and ` +
                        `Application Insights emulators), ${round(cpu.azurite, 2)} ms in Azurite ` +
                        `(${round(burst.blobCalls / burst.events, 2)} blob calls per event beside the table ones); ` +
                        `the ${cores} cores were ${round(busy * 100, 0)} % busy; Azurite's one thread alone allows ` +
                        `${round(1000 / cpu.azurite, 0)} events/s`,
                );
            }
            ctx.add('burstDuplicateCards', burst.burstDuplicateCards, '0', burst.burstDuplicateCards === 0);
            ctx.add('burstMissedCards', burst.burstMissedCards, '0', burst.burstMissedCards === 0);
            const chart = await writeBurstChart(
                burstChartSvg(
                    series,
                    `${burst.events} events (30 % duplicates, 10 % irrelevant), concurrency 64, against Azurite and the ` +
                        `emulators; ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores${ctx.quick ? ', --quick' : ''}`,
                ),
                path.join(root, 'docs', 'perf', 'burst.png'),
            );
            console.log('written' in chart ? `  chart: ${path.relative(root, chart.written)}` : `  ${chart.skipped}`);
        },
    },
    {
        name: 'sweep',
        world: 'own',
        async run(ctx) {
            console.log(
                'Sweep at scale: 50 subscriptions, 10,000 servers, 20,000 connections, ARM at 30 ms with throttling...',
            );
            const sweep = await measureSweep({
                subscriptions: ctx.quick ? 10 : 50,
                servers: ctx.quick ? 2000 : 10_000,
                connectionsPerServer: 2,
                pending: ctx.quick ? 40 : 200,
                latencyMs: 30,
                pageSize: 20,
                dist: path.join(root, 'dist'),
            });
            ctx.extra.sweep = sweep;
            const scale = `${sweep.subscriptions} subscriptions × ${sweep.kinds} kinds, ${sweep.servers} servers, ${sweep.connections} connections (${sweep.pending} Pending)`;
            ctx.add(
                'sweepSeconds',
                round(sweep.sweepSeconds, 2),
                '≤ 60',
                sweep.sweepSeconds <= 60 && sweep.report.errors.length === 0 && sweep.report.scopes.finished,
                `${scale}; ${sweep.report.servers} servers listed, ${sweep.report.pendingPecs} Pending seen, ` +
                    `${sweep.report.errors.length} errors, pass finished in one run: ${sweep.report.scopes.finished}`,
            );
            ctx.add(
                'sweepArmReads',
                sweep.sweepArmReads,
                `≤ 2 × subscriptions × kinds + pages (${sweep.readGoal}), 0 throttled`,
                sweep.sweepArmReads <= sweep.readGoal && sweep.throttled === 0,
                `${sweep.listPages} list pages + ${sweep.perItemReads} single reads; ${sweep.throttled} answered 429, ` +
                    `${sweep.earlyRetries} sent before Retry-After; at most ${sweep.maxReadsPerSubscription} reads of one subscription (bucket 250)`,
            );
            ctx.add(
                'sweepPeakRssMb',
                round(sweep.sweepPeakRssMb, 0),
                '≤ 256',
                sweep.sweepPeakRssMb <= 256,
                `peak RSS of a fresh node process running one sweep on the compiled app, sampled every 20 ms ` +
                    `(${round(sweep.startRssMb, 0)} MB at start, ${round(sweep.loadedRssMb, 0)} MB with the app loaded)`,
            );
        },
    },
    {
        name: 'dashboard',
        world: {},
        async run(ctx, h) {
            await benchDashboard(need(h), ctx.quick, ctx.add, ctx.extra);
        },
    },
    {
        name: 'click',
        world: { BENCH_WORLD: 'decision' },
        async run(ctx, h) {
            console.log('Click: time to the invoke answer, with realistic latency and with Graph and ARM slow...');
            const clicks = ctx.quick ? 20 : 60;
            const realistic = await measureClicks(need(h), {
                clicks,
                latency: { armMs: 120, graphMs: 80, botMs: 150 },
            });
            const slow = await measureClicks(need(h), { clicks, latency: { armMs: 700, graphMs: 700, botMs: 150 } });
            ctx.extra.click = { realistic, slow };
            ctx.add(
                'clickAnswerMs',
                round(realistic.p95, 0),
                'p95 ≤ 1,000',
                realistic.p95 <= 1000 && slow.p95 <= 1000,
                `p50 ${round(realistic.p50, 0)} ms, p95 ${round(realistic.p95, 0)} ms (ARM ${realistic.latency.armMs} ms, ` +
                    `Graph ${realistic.latency.graphMs} ms a call); Graph and ARM at 700 ms: p50 ${round(slow.p50, 0)} ms, ` +
                    `p95 ${round(slow.p95, 0)} ms; ${realistic.failures + slow.failures} not answered with a card`,
            );
            ctx.add('clickAnswerMsP50', round(realistic.p50, 0), '—', true, 'realistic latency');
        },
    },
    {
        name: 'apply',
        world: { BENCH_WORLD: 'decision' },
        async run(ctx, h) {
            console.log('Apply: one message from delivery to applied, ARM answering at once and with a 202...');
            const applies = ctx.quick ? 12 : 40;
            const immediate = await measureApplies(need(h), { applies, immediate: true });
            const async202 = await measureApplies(need(h), { applies, immediate: false });
            ctx.extra.apply = { immediate, async202 };
            ctx.add(
                'applySeconds',
                round(immediate.p95, 2),
                'p95 ≤ 2 (immediate answer)',
                immediate.p95 <= 2 && immediate.failures === 0,
                `PUT answered 200 with provisioningState Ready/Succeeded: p50 ${round(immediate.p50, 2)} s; ` +
                    `202 with one poll: p50 ${round(async202.p50, 2)} s, p95 ${round(async202.p95, 2)} s; ` +
                    `${immediate.failures + async202.failures} not applied`,
            );
        },
    },
    {
        name: 'fault',
        world: 'own',
        async run(ctx) {
            console.log('Fault run: 20 % of ARM, Bot Connector and storage calls fail...');
            const faultWorld = await startFaultHarness({ timeoutMs: 500 });
            try {
                const fault = await runFaultScenario(faultWorld.h, {
                    pecs: ctx.quick ? 40 : 200,
                    seed: 6,
                    rate: 0.2,
                    storage: faultWorld.storage,
                });
                const { lost: _lost, doubles: _doubles, ...figures } = fault;
                ctx.extra.faultRun = figures;
                const injected = fault.injectedFaults.arm + fault.injectedFaults.bot + fault.injectedFaults.storage;
                ctx.add(
                    'faultRunLostPecs',
                    fault.lostPecs,
                    '0',
                    fault.lostPecs === 0,
                    `${fault.pecs} PECs, ${injected} faults injected`,
                );
                ctx.add('faultRunDoubleDecisions', fault.doubleDecisions, '0', fault.doubleDecisions === 0);
                ctx.add(
                    'faultRunDuplicateCards',
                    fault.duplicateCards,
                    '0',
                    fault.duplicateCards === 0,
                    `${fault.cards} cards posted for ${fault.pecs} PECs`,
                );
                ctx.add('faultRunRepeatedPuts', fault.repeatedPuts, '0', fault.repeatedPuts === 0);
                // Progress, not only safety: a run whose clicks never landed would lose nothing and decide nothing.
                ctx.add(
                    'faultRunApplied',
                    fault.applied,
                    `${fault.pecs} (every PEC)`,
                    fault.applied === fault.pecs,
                    `${fault.pendingLeft} left Pending, ${fault.failed} failed`,
                );
            } finally {
                await faultWorld.close();
                await closeSharedTokenEmulator();
            }
        },
    },
    {
        name: 'model',
        world: { HTTP_TIMEOUT_MS: '300', ARM_LRO_DEADLINE_SECONDS: '5' },
        async run(ctx, h) {
            console.log(
                'Model-based run: random orders of events, clicks, queue work, sweeps, portal decisions, faults...',
            );
            const model = await runModel(need(h), { seed: 19, steps: ctx.quick ? 1000 : 10_000, maxCommands: 40 });
            ctx.extra.model = model;
            ctx.add(
                'modelSteps',
                model.modelSteps,
                '≥ 10,000',
                model.modelSteps >= 10_000,
                `${model.runs} command sequences`,
            );
            ctx.add(
                'modelViolations',
                model.modelViolations,
                '0',
                model.modelViolations === 0,
                model.counterexample?.split('\n').slice(0, 4).join(' | ') ?? '',
            );
        },
    },
    {
        name: 'fuzz',
        world: {},
        async run(ctx, h) {
            console.log('Fuzz: generated events, bot activities and web form posts...');
            const fuzz = await runFuzz(need(h), { cases: ctx.quick ? 1000 : 10_000, seed: 6 });
            ctx.extra.fuzz = fuzz;
            ctx.add('fuzzCases', fuzz.cases, '≥ 10,000', fuzz.cases >= 10_000);
            ctx.add('fuzzCrashes', fuzz.crashes, '0', fuzz.crashes === 0, fuzz.examples.slice(0, 2).join(' | '));
        },
    },
];

function chosen(): Section[] {
    const at = process.argv.indexOf('--only');
    if (at < 0) {
        return sections;
    }
    const names = (process.argv[at + 1] ?? '').split(',').filter(Boolean);
    const unknown = names.filter((n) => !sections.some((s) => s.name === n));
    if (names.length === 0 || unknown.length > 0) {
        throw new Error(
            `--only takes section names separated by commas; unknown: ${unknown.join(', ') || '(none given)'}; ` +
                `known: ${sections.map((s) => s.name).join(', ')}`,
        );
    }
    return sections.filter((s) => names.includes(s.name));
}

async function main(): Promise<void> {
    if (process.argv.includes('--list')) {
        console.log(sections.map((s) => s.name).join('\n'));
        return;
    }
    const started = Date.now();
    const toRun = chosen();
    const partial = toRun.length < sections.length;
    const rows: Row[] = [];
    const extra: Record<string, unknown> = {};
    const ctxBase = {
        quick,
        extra,
        add(field: string, value: number, goal: string, met: boolean, note = '') {
            rows.push({ field, value, goal, met, note });
            console.log(`  ${field} = ${value}${note ? ` (${note})` : ''}`);
        },
    };

    console.log('Packaging (npm run package) and building the tsc output (npm run build)...');
    const pkg = await buildPackage();
    execFileSync(
        process.execPath,
        [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        { cwd: root, stdio: 'inherit' },
    );
    const ctx: BenchContext = { ...ctxBase, pkg };

    // Consecutive sections with the same settings share one world: starting the emulators costs seconds.
    let world: { key: string; close(): Promise<void>; h: Harness } | undefined;
    try {
        for (const section of toRun) {
            if (section.world === 'own') {
                await world?.close();
                world = undefined;
                // Its own emulators, but the same Azurite: `--only fault` must not depend on an earlier section.
                await startAzurite();
                await section.run(ctx, undefined);
                continue;
            }
            const key = JSON.stringify(section.world);
            if (world?.key !== key) {
                await world?.close();
                world = undefined;
                const { BENCH_WORLD: _label, ...settings } = section.world;
                const started_ = await startWorld(settings);
                world = { key, h: started_.h, close: () => started_.close() };
            }
            await section.run(ctx, world.h);
        }
    } finally {
        await world?.close();
        await stopAzurite();
    }

    const file = path.join(root, 'bench-results.json');
    const previous: Record<string, unknown> =
        partial && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
    const previousDetails = (previous.details ?? {}) as Record<string, unknown>;
    const results: Record<string, unknown> = Object.fromEntries(rows.map((r) => [r.field, r.value]));
    const {
        details: _details,
        measuredAt: _at,
        machine: _machine,
        quick: _quick,
        sections: _s,
        ...previousFigures
    } = previous;
    const report = {
        ...previousFigures,
        ...results,
        measuredAt: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown' },
        quick,
        sections: partial ? toRun.map((s) => s.name) : 'all',
        details: { ...previousDetails, ...extra },
    };
    // In the repository's own format, so that a fresh measurement passes `npm run lint` as committed.
    const options = (await prettier.resolveConfig(file)) ?? {};
    writeFileSync(file, await prettier.format(JSON.stringify(report, null, 4), { ...options, filepath: file }));

    console.log(`\n${table(rows)}\n`);
    console.log(`Wrote bench-results.json in ${Math.round((Date.now() - started) / 1000)} s`);
    const broken = rows.filter((r) => !r.met && /Cards|Lost|Double|Crashes|RepeatedPuts|Violations/.test(r.field));
    if (broken.length > 0) {
        console.error(`Correctness figures not zero: ${broken.map((r) => r.field).join(', ')}`);
        process.exitCode = 1;
    }
}

function table(rows: Row[]): string {
    const header = ['field', 'value', 'goal', 'met', 'note'];
    const lines = rows.map((r) => [r.field, String(r.value), r.goal, r.met ? 'yes' : 'NO', r.note]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const fmt = (cells: string[]) =>
        cells
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd();
    return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}

main().catch((err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
});
