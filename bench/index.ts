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
import { buildPackage } from '../scripts/package';
import { closeSharedTokenEmulator, type Harness } from '../test/harness';
import { runFaultScenario, startFaultHarness } from '../test/reliability/faultRun';
import { runFuzz } from '../test/reliability/fuzz';
import { runModel } from '../test/reliability/model';
import { measureBurst } from './burst';
import { measureApplies, measureClicks } from './decisionPath';
import { describeSplit, measureColdStart } from './coldStart';
import { benchDashboard } from './dashboard';
import { startWorld, stopAzurite } from './env';
import { measureEventOverhead } from './eventOverhead';
import { round } from './stats';

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
            console.log('Event overhead: pecEvents against the same round trips made raw...');
            const overhead = await measureEventOverhead(need(h), {
                events: ctx.quick ? 100 : 400,
                rounds: ctx.quick ? 5 : 10,
            });
            ctx.extra.eventOverhead = overhead;
            ctx.add(
                'eventOverheadRatio',
                round(overhead.eventOverheadRatio),
                '≤ 1.3',
                overhead.eventOverheadRatio <= 1.3,
                `${round(overhead.appPerEventMs)} ms vs ${round(overhead.rawPerEventMs)} ms per event, ${round(overhead.appRoundTrips, 1)} ` +
                    `calls each; vs only the 5 listed calls: ${round(overhead.minimalRatio)}×`,
            );
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
            ctx.extra.burst = burst;
            ctx.add(
                'burstEventsPerSecond',
                round(burst.burstEventsPerSecond, 0),
                '≥ 500',
                burst.burstEventsPerSecond >= 500,
                `${burst.events} events, ${burst.pecs} PECs in ${round(burst.seconds, 1)} s; ` +
                    `${round(burst.storageCalls / burst.pecs, 1)} storage calls per PEC, ${round(burst.storageCallsPerSecond, 0)}/s`,
            );
            ctx.add('burstDuplicateCards', burst.burstDuplicateCards, '0', burst.burstDuplicateCards === 0);
            ctx.add('burstMissedCards', burst.burstMissedCards, '0', burst.burstMissedCards === 0);
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
    writeFileSync(file, `${JSON.stringify(report, null, 4)}\n`);

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
