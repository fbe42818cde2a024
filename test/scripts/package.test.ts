/**
 * The deploy package: one bundled main.js that registers, in a bare `node` with only the host's side of
 * `@azure/functions-core` faked, exactly what the sources register under jest, and needs nothing else.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { strFromU8, strToU8, unzipSync } from 'fflate';
import { buildPackage, functionFiles, maxZipBytes, type PackageResult } from '../../scripts/package';
import { deterministicZip } from '../../scripts/zip';

interface Registered {
    name: string;
    bindings: Record<string, { type: string; direction: string }>;
}

// The sources' registrations, captured the way test/functions/registration.test.ts does, to compare with the bundle's.
const fromSources: Registered[] = [];
const hooksFromSources: string[] = [];

jest.mock(
    '@azure/functions-core',
    () => ({
        registerFunction: (metadata: Registered) => {
            fromSources.push(metadata);
            return { dispose: () => undefined };
        },
        setProgrammingModel: () => undefined,
        registerHook: (name: string) => {
            hooksFromSources.push(name);
            return { dispose: () => undefined };
        },
        log: () => undefined,
    }),
    { virtual: true },
);

/** The node that loads the bundle: this one, or the deployed runtime's (npm run infra:check sets Node 22). */
const testNode = process.env.PEC_GATE_TEST_NODE ?? process.execPath;

/** What each `app.<method>('name', …)` registers as its trigger binding. */
const triggerOf: Record<string, string> = {
    http: 'httpTrigger',
    eventGrid: 'eventGridTrigger',
    storageQueue: 'queueTrigger',
    storageBlob: 'blobTrigger',
    timer: 'timerTrigger',
    serviceBusQueue: 'serviceBusTrigger',
    serviceBusTopic: 'serviceBusTrigger',
    eventHub: 'eventHubTrigger',
    cosmosDB: 'cosmosDBTrigger',
};

/**
 * Run by a bare node: fakes `@azure/functions-core` as the worker does (it is not a package, the worker answers the
 * `require`), requires main.js and prints what was registered.
 */
const loaderScript = `
const Module = require('node:module');
const registered = [];
const hooks = [];
const core = {
    registerFunction(metadata) { registered.push(metadata); return { dispose() {} }; },
    registerHook(name) { hooks.push(name); return { dispose() {} }; },
    setProgrammingModel() {},
    log() {},
};
const load = Module._load;
Module._load = function (request, parent, isMain) {
    return request === '@azure/functions-core' ? core : load.call(this, request, parent, isMain);
};
const started = process.hrtime.bigint();
require(process.argv[2]);
const loadMs = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(JSON.stringify({ registered, hooks, loadMs }));
`;

const root = path.join(__dirname, '..', '..');
let outDir: string;
let result: PackageResult;
let entries: Record<string, Uint8Array>;
let loaded: { registered: Registered[]; hooks: string[]; loadMs: number };
let cacheReport: string;

beforeAll(async () => {
    outDir = mkdtempSync(path.join(os.tmpdir(), 'pec-gate-package-'));
    result = await buildPackage({ outDir });
    entries = unzipSync(readFileSync(result.zipPath));

    const loader = path.join(outDir, 'load.cjs');
    writeFileSync(loader, loaderScript);
    // No settings and no node_modules anywhere up the temp path: loading must need neither (settings are checked by
    // the appStart hook, which the host runs later).
    const run = spawnSync(testNode, [loader, path.join(result.stagingDir, 'main.js')], {
        cwd: outDir,
        env: { PATH: process.env.PATH ?? '', PEC_GATE_CODE_CACHE_REPORT: '1' },
        encoding: 'utf8',
        timeout: 30_000,
    });
    if (run.status !== 0) {
        throw new Error(`main.js failed to load (exit ${run.status}):\n${run.stderr}`);
    }
    loaded = JSON.parse(run.stdout) as typeof loaded;
    cacheReport = run.stderr;

    for (const file of readdirSync(path.join(root, 'functions')).filter((f) => f.endsWith('.ts'))) {
        await import(path.join(root, 'functions', file));
    }
}, 60_000);

afterAll(() => {
    rmSync(outDir, { recursive: true, force: true });
});

/** The functions registered in the sources, by a plain reading of `app.<trigger>('name'`, and their trigger type. */
function declaredFunctions(): { name: string; trigger: string; file: string }[] {
    const found: { name: string; trigger: string; file: string }[] = [];
    for (const file of functionFiles(root)) {
        const text = readFileSync(path.join(root, file), 'utf8');
        for (const match of text.matchAll(/\bapp\.(\w+)\(\s*['"]([^'"]+)['"]/g)) {
            const [, method = '', name = ''] = match;
            const trigger = triggerOf[method];
            if (!trigger) {
                throw new Error(`${file}: app.${method}('${name}') is not in this test's triggerOf table; add it`);
            }
            found.push({ name, trigger, file });
        }
    }
    return found;
}

describe('the deploy package', () => {
    it('is one zip under the size limit: host.json, package.json, main.js, the bundle with its map and code cache', () => {
        expect(result.zipPath).toBe(path.join(outDir, 'pec-gate.zip'));
        expect(result.zipBytes).toBeLessThan(maxZipBytes);
        expect(readFileSync(result.zipPath).length).toBe(result.zipBytes);
        expect(Object.keys(entries).sort()).toEqual(result.files);
        expect(result.files).toEqual(['app.js', 'app.js.cache', 'app.js.map', 'host.json', 'main.js', 'package.json']);
        expect(readdirSync(result.stagingDir).sort()).toEqual(result.files);
    });

    it('has a package.json whose main is main.js, with no dependencies and no "type" (main.js is CommonJS)', () => {
        const pkg = JSON.parse(strFromU8(entries['package.json'] ?? new Uint8Array())) as Record<string, unknown>;
        expect(pkg.main).toBe('main.js');
        expect(pkg).not.toHaveProperty('dependencies');
        expect(pkg).not.toHaveProperty('type');
        expect(pkg.name).toBe('pec-gate');
    });

    it("carries the repository's host.json unchanged", () => {
        expect(strFromU8(entries['host.json'] ?? new Uint8Array())).toBe(
            readFileSync(path.join(root, 'host.json'), 'utf8'),
        );
    });

    it('bundles every function file', () => {
        expect(result.entries).toEqual(functionFiles(root));
        expect(result.entries.length).toBeGreaterThan(0);
    });

    it('links its source map, which maps back to the sources by repository-relative paths', () => {
        const js = strFromU8(entries['app.js'] ?? new Uint8Array());
        expect(js.trimEnd().endsWith('//# sourceMappingURL=app.js.map')).toBe(true);
        const map = JSON.parse(strFromU8(entries['app.js.map'] ?? new Uint8Array())) as { sources: string[] };
        expect(map.sources).toEqual(expect.arrayContaining(['functions/pecEvents.ts', 'src/runtime.ts']));
    });

    it('is pure ASCII, so V8 holds it as a one-byte string (main.js reads it as latin1)', () => {
        const bytes = entries['app.js'] ?? new Uint8Array();
        expect(bytes.length).toBeGreaterThan(0);
        expect(bytes.every((b) => b < 0x80)).toBe(true);
    });

    it('requires nothing at run time but Node built-ins and the worker-provided @azure/functions-core', () => {
        const js = strFromU8(entries['app.js'] ?? new Uint8Array()) + strFromU8(entries['main.js'] ?? new Uint8Array());
        const required = new Set([...js.matchAll(/\brequire\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1] ?? ''));
        const foreign = [...required].filter((name) => !isBuiltin(name) && name !== '@azure/functions-core');
        expect(foreign).toEqual([]);
    });
});

describe('main.js loaded by node with a virtual @azure/functions-core', () => {
    it('registers every function the files declare, with its trigger type', () => {
        const declared = declaredFunctions();
        expect(declared.map((d) => d.name)).toEqual(
            expect.arrayContaining(['pecEvents', 'teamsMessages', 'decisionPage', 'applyDecision', 'sweep']),
        );
        for (const { name, trigger } of declared) {
            const fn = loaded.registered.find((r) => r.name === name);
            expect(fn).toBeDefined();
            const triggers = Object.values(fn?.bindings ?? {}).filter((b) => b.direction === 'in');
            expect(triggers.map((b) => b.type)).toContain(trigger);
        }
        expect(loaded.registered.map((r) => r.name).sort()).toEqual(declared.map((d) => d.name).sort());
    });

    it('registers exactly what the sources register, bindings and hooks included', () => {
        const byName = (a: Registered, b: Registered) => a.name.localeCompare(b.name);
        // Through JSON, as the bundle's were: handlers and other functions are not part of the comparison.
        const sources = JSON.parse(JSON.stringify(fromSources)) as Registered[];
        expect([...loaded.registered].sort(byName)).toEqual(sources.sort(byName));
        expect([...loaded.hooks].sort()).toEqual([...hooksFromSources].sort());
        expect(loaded.hooks).toContain('appStart');
    });

    it('made its code cache on events that went the whole way a first event goes (a card per server kind)', () => {
        // The training's local answers must keep up with the app: an event stopped early leaves its path uncompiled.
        const [summary] = result.training;
        const events = Number(/(\d+) events/.exec(summary ?? '')?.[1]);
        expect(events).toBeGreaterThan(0);
        expect(summary).toContain(`${events} cards posted`);
        expect(Number(/(\d+) audit anchors/.exec(summary ?? '')?.[1])).toBeGreaterThanOrEqual(events);
        expect(result.training).toHaveLength(1);
    });

    it('compiles from the code cache this Node.js made at packaging', () => {
        expect(cacheReport).toContain('code cache: accepted');
    });

    it('still loads, compiling from source, when V8 rejects the cache (another Node.js) or it is missing', () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'pec-gate-stale-'));
        try {
            for (const name of result.files) {
                writeFileSync(path.join(dir, name), readFileSync(path.join(result.stagingDir, name)));
            }
            writeFileSync(path.join(dir, 'load.cjs'), loaderScript);
            const run = (label: string) => {
                const r = spawnSync(testNode, [path.join(dir, 'load.cjs'), path.join(dir, 'main.js')], {
                    cwd: dir,
                    env: { PATH: process.env.PATH ?? '', PEC_GATE_CODE_CACHE_REPORT: '1' },
                    encoding: 'utf8',
                    timeout: 30_000,
                });
                expect(r.stderr).toContain(`code cache: ${label}`);
                return (JSON.parse(r.stdout) as typeof loaded).registered.map((f) => f.name).sort();
            };
            const expected = loaded.registered.map((f) => f.name).sort();
            const cache = readFileSync(path.join(dir, 'app.js.cache'));
            cache.fill(7, 0, 64);
            writeFileSync(path.join(dir, 'app.js.cache'), cache);
            expect(run('rejected')).toEqual(expected);
            rmSync(path.join(dir, 'app.js.cache'));
            expect(run('none')).toEqual(expected);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe('the zip writer', () => {
    it('is deterministic: the same files give the same bytes, whatever the time or the order they come in', () => {
        const first = deterministicZip({ 'b.txt': strToU8('second'), 'a.txt': strToU8('first') });
        const second = deterministicZip({ 'a.txt': strToU8('first'), 'b.txt': strToU8('second') });
        expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
        expect(Object.keys(unzipSync(first))).toEqual(['a.txt', 'b.txt']);
        // The first local header's DOS time and date: a fixed 1980-01-01 12:00:00, not the clock.
        const header = Buffer.from(first);
        expect([header.readUInt16LE(10), header.readUInt16LE(12)]).toEqual([12 << 11, (1 << 5) | 1]);
    });
});
