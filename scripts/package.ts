/**
 * `npm run package`: the deployable zip of the Function App, dist/pec-gate.zip, and its unzipped twin dist/package/
 * (VS Code's deploy zips that folder itself: see .vscode/settings.json).
 *
 * One esbuild bundle instead of node_modules: the worker reads one file instead of thousands of small ones (slow on a
 * cold start, where the app's files come from a mounted package), and the zip is about 1.2 MB instead of tens.
 *
 * - The entry is generated in memory from functions/*.ts, so a new function file is deployed without editing this.
 * - Every package import is resolved the way Node resolves a `require` (see `resolveAsRequire`): the bundle holds the
 *   same module graph as the CommonJS build the tests run, and one copy of each Azure SDK core package.
 * - The lazy `import()`s of src/ (@azure/identity, jose through teams/botAuth) stay lazy: esbuild wraps each bundled
 *   module in an init function that runs on the first import, so they cost parse time only, not start-up evaluation.
 * - zod comes from its ES module build (see `esmPackages`), so esbuild drops the five sixths the app does not use.
 * - `@azure/functions-core` is not a package: the Functions worker provides it at run time.
 * - The bundle is app.js; main.js, the entry the worker loads, runs it with V8's code cache (app.js.cache, made here
 *   by a training run of the bundle in a child node): see `loaderSource` and `codeCacheFor`.
 * - Minified, with `keepNames`, so stack traces still name the functions (`at loadConfig (app.js:203:7375)`), and a
 *   linked source map, app.js.map, in the zip (without sources content: positions only, about 0.6 MB zipped). Node's
 *   `--enable-source-maps` (app setting `languageWorkers__node__arguments`) is left off: it would read and parse the
 *   2.5 MB map on every cold start to improve only the traces of failures, and it is not verified here for a script
 *   compiled through vm, as app.js is. Map a trace offline with the map instead.
 * - policy.json at the repository root, when there is one, goes to the zip root so `POLICY_FILE=policy.json` finds it
 *   (POLICY_FILE is relative to the app root). Nothing else from the repository is deployed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { asciiBundle } from './asciiBundle';
import { deterministicZip, formatBytes } from './zip';

/** Flex Consumption takes far bigger packages; this is a guard against bundling something by mistake. */
export const maxZipBytes = 5_000_000;

export interface PackageOptions {
    /** The repository root; by default the parent of scripts/. */
    rootDir?: string;
    /** Where `package/` and `pec-gate.zip` are written; by default `<rootDir>/dist`. */
    outDir?: string;
}

export interface PackageResult {
    /** The unzipped package: host.json, package.json, main.js, app.js, app.js.map, app.js.cache (and policy.json). */
    stagingDir: string;
    zipPath: string;
    /** The function files bundled, e.g. `functions/pecEvents.ts`. */
    entries: string[];
    /** The names in the zip, sorted. */
    files: string[];
    bundleBytes: number;
    mapBytes: number;
    zipBytes: number;
    /** The code cache's training run, as it reported itself: how far its events went (cards posted...). */
    training: string[];
}

const defaultRoot = path.resolve(__dirname, '..');

/** The optional policy file, deployed at the app root under the same name. */
const policyFileName = 'policy.json';

/** functions/*.ts, sorted so the bundle (and so the zip) does not depend on the file system's listing order. */
export function functionFiles(rootDir: string): string[] {
    return readdirSync(path.join(rootDir, 'functions'))
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
        .sort()
        .map((f) => `functions/${f}`);
}

/**
 * Resolves `import` and `import()` of packages as if they were `require` calls, with only Node's own conditions.
 * Without this, esbuild picks each package's ESM build for an `import` and its CommonJS build for a `require`, and the
 * Azure SDK packages, which do both, would be bundled twice (core-client, core-rest-pipeline, core-lro…): more bytes,
 * two module-level states, and an `instanceof RestError` that fails across the copies. Node running the tsc build (and
 * ts-jest running the tests) requires every package, so this is the graph that is tested. A package that can only be
 * imported falls back to esbuild's own resolution.
 */
/**
 * Packages taken from their ES module build, so esbuild can drop what the app does not use: zod's CommonJS build is
 * 450 kB of which the app uses a sixth, and evaluating all of it costs about 30 ms of every cold start. Safe because
 * nothing in the bundle requires zod (so there is one copy), and the app imports it as a namespace (`import * as z`).
 * Likewise @azure/storage-blob (sideEffects: false), reached only through src/storage/blobService.ts, which names the
 * one class the audit anchors use: about 80 kB less of it, and less of its generated code evaluated on the first event.
 * Its own imports of the Azure core packages still resolve as `require`, so they stay one copy.
 */
const esmPackages = ['zod', '@azure/storage-blob'];

const resolveAsRequire: Plugin = {
    name: 'resolve-as-require',
    setup(pluginBuild) {
        const again = Symbol('resolve-as-require');
        pluginBuild.onResolve({ filter: /^[^./]/ }, async (args) => {
            if (args.pluginData === again || (args.kind !== 'import-statement' && args.kind !== 'dynamic-import')) {
                return undefined;
            }
            if (esmPackages.some((name) => args.path === name || args.path.startsWith(`${name}/`))) {
                return undefined;
            }
            const resolved = await pluginBuild.resolve(args.path, {
                kind: 'require-call',
                importer: args.importer,
                resolveDir: args.resolveDir,
                pluginData: again,
            });
            return resolved.errors.length > 0 ? undefined : resolved;
        });
    },
};

const codeCacheName = 'app.js.cache';

/**
 * main.js, the entry the worker requires: it runs app.js (the bundle) as a CommonJS module compiled with the V8 code
 * cache in app.js.cache, so a cold start deserializes compiled code instead of parsing and compiling 1-2 MB of
 * JavaScript (about 80 ms here). V8 checks that the cache matches the source and its own version and flags; when it
 * does not (Azure runs another Node.js build than the one that packaged), it rejects the cache and compiles as usual,
 * so a stale cache costs nothing but the speed-up.
 */
const loaderSource = `'use strict';
// Generated by scripts/package.ts: runs app.js with its V8 code cache (see the comment there).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const file = path.join(__dirname, 'app.js');
const cacheFile = path.join(__dirname, '${codeCacheName}');
let cachedData;
try {
    cachedData = fs.readFileSync(cacheFile);
} catch {
    // No cache: V8 compiles from source.
}
// app.js is pure ASCII (scripts/asciiBundle.ts), for which latin1 reads the same characters without UTF-8 decoding.
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'latin1')), { filename: file, cachedData });
const app = new Module(file, module);
app.filename = file;
app.paths = module.paths;
script.runInThisContext().call(app.exports, app.exports, Module.createRequire(file), app, file, __dirname);
app.loaded = true;
module.exports = app.exports;
if (process.env.PEC_GATE_WRITE_CODE_CACHE === '1') {
    // At exit, so the cache holds what the packaging's training run compiled, not only what loading did.
    process.once('exit', () => fs.writeFileSync(cacheFile, script.createCachedData()));
}
if (process.env.PEC_GATE_CODE_CACHE_REPORT === '1') {
    process.stderr.write(\`code cache: \${cachedData ? (script.cachedDataRejected ? 'rejected' : 'accepted') : 'none'}\\n\`);
}
`;

/**
 * The key and certificate of the training run's local HTTPS server (127.0.0.1, one day, an EC key: quick to make),
 * written into dir; undefined when they cannot be made (selfsigned is a devDependency), and the training then runs
 * against closed ports, covering less.
 */
async function trainingTls(dir: string): Promise<Record<string, string>> {
    try {
        const selfsigned = await import('selfsigned');
        const pems = await selfsigned.generate([{ name: 'commonName', value: 'pec-gate code cache training' }], {
            keyType: 'ec',
            algorithm: 'sha256',
            notAfterDate: new Date(Date.now() + 24 * 3600 * 1000),
            extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
        });
        const key = path.join(dir, 'training.key');
        const cert = path.join(dir, 'training.crt');
        writeFileSync(key, pems.private, { mode: 0o600 });
        writeFileSync(cert, pems.cert);
        return { PEC_GATE_TRAINING_KEY: key, PEC_GATE_TRAINING_CERT: cert, NODE_EXTRA_CA_CERTS: cert };
    } catch (err) {
        console.warn(`code cache training without its local servers: ${err instanceof Error ? err.message : err}`);
        return {};
    }
}

/**
 * The code cache of app.js, made by this Node.js: the staged package is run in a child process by
 * scripts/code-cache-training.cjs (the worker's @azure/functions-core faked, as in the tests), which sends one event
 * per server kind through pecEvents against the local answers of scripts/code-cache-world.cjs, and V8 serializes what
 * was compiled by then. The cache so covers the whole path of a first event (its storage, blob anchor, ARM, card and
 * telemetry clients), not only start-up: what it leaves out, the first event compiles from source.
 */
async function codeCacheFor(
    files: Record<string, Uint8Array>,
    rootDir: string,
): Promise<{ cache: Uint8Array; training: string[] }> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pec-gate-cache-'));
    try {
        for (const name of ['main.js', 'app.js']) {
            writeFileSync(path.join(dir, name), files[name]!);
        }
        const tls = await trainingTls(dir);
        const training = path.join(rootDir, 'scripts', 'code-cache-training.cjs');
        // V8 accepts a code cache only from the same Node.js build: PEC_GATE_PACKAGE_NODE trains it with the node the
        // app will run on (npm run infra:check packages with Node 22 that way), by default the one packaging.
        const trainer = process.env.PEC_GATE_PACKAGE_NODE ?? process.execPath;
        const run = spawnSync(trainer, [training, path.join(dir, 'main.js')], {
            cwd: dir,
            env: { PATH: process.env.PATH ?? '', PEC_GATE_WRITE_CODE_CACHE: '1', ...tls },
            encoding: 'utf8',
            timeout: 60_000,
        });
        if (run.status !== 0 || !existsSync(path.join(dir, codeCacheName))) {
            throw new Error(
                `The bundle failed to load while its code cache was made (exit ${run.status}):\n${run.stderr}`,
            );
        }
        const lines = run.stderr.split('\n').filter((l) => l.trim());
        const others = lines.filter((l) => !l.startsWith('training: '));
        if (others.length > 0) {
            console.warn(others.join('\n'));
        }
        return {
            cache: readFileSync(path.join(dir, codeCacheName)),
            training: lines.filter((l) => l.startsWith('training: ')).map((l) => l.slice('training: '.length)),
        };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

export async function buildPackage(options: PackageOptions = {}): Promise<PackageResult> {
    const rootDir = path.resolve(options.rootDir ?? defaultRoot);
    const outDir = path.resolve(options.outDir ?? path.join(rootDir, 'dist'));
    const stagingDir = path.join(outDir, 'package');
    const zipPath = path.join(outDir, 'pec-gate.zip');
    const entries = functionFiles(rootDir);
    if (entries.length === 0) {
        throw new Error(`No functions/*.ts under ${rootDir}: nothing to package`);
    }

    const result = await build({
        stdin: {
            contents: entries.map((f) => `import './${f.replace(/\.ts$/, '')}';`).join('\n'),
            resolveDir: rootDir,
            sourcefile: 'functions-entry.ts',
            loader: 'ts',
        },
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        // Node's conditions only ("require"/"import", "node", "default"); esbuild's default adds "module", which
        // Node ignores, so tslib and friends would otherwise come from a file Node never loads.
        conditions: [],
        external: ['@azure/functions-core'],
        plugins: [resolveAsRequire],
        minify: true,
        keepNames: true,
        sourcemap: 'linked',
        sourcesContent: false,
        // Never written there: the path only makes the map's sources repository-relative ("src/runtime.ts"), which
        // is also how they read once Node resolves them against /home/site/wwwroot/main.js.map.
        outfile: path.join(rootDir, 'app.js'),
        write: false,
        legalComments: 'none',
        logLevel: 'silent',
    });
    for (const warning of result.warnings) {
        console.warn(`esbuild: ${warning.text}${warning.location ? ` (${warning.location.file})` : ''}`);
    }
    const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
    const map = result.outputFiles.find((f) => f.path.endsWith('.js.map'));
    if (!js || !map) {
        throw new Error('esbuild wrote no app.js and app.js.map');
    }

    // Pure ASCII, so V8 holds app.js as a one-byte string: see asciiBundle.ts.
    const bundle = asciiBundle(js.text, map.text);

    const rootPackage = JSON.parse(readFileSync(path.join(rootDir, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
        description?: string;
    };
    // No dependencies (they are in app.js) and no "type": main.js is CommonJS. The worker loads `main`.
    const deployPackage = {
        name: rootPackage.name,
        version: rootPackage.version,
        ...(rootPackage.description ? { description: rootPackage.description } : {}),
        private: true,
        main: 'main.js',
    };
    const files: Record<string, Uint8Array> = {
        'host.json': readFileSync(path.join(rootDir, 'host.json')),
        'package.json': Buffer.from(`${JSON.stringify(deployPackage, null, 4)}\n`),
        'main.js': Buffer.from(loaderSource),
        'app.js': Buffer.from(bundle.js),
        'app.js.map': Buffer.from(bundle.map),
    };
    const policyPath = path.join(rootDir, policyFileName);
    if (existsSync(policyPath)) {
        files[policyFileName] = readFileSync(policyPath);
    }

    const { cache, training } = await codeCacheFor(files, rootDir);
    files[codeCacheName] = cache;
    const zip = deterministicZip(files);
    if (zip.length >= maxZipBytes) {
        throw new Error(
            `The package is ${formatBytes(zip.length)}, at or over the ${formatBytes(maxZipBytes)} limit: something ` +
                'heavy was bundled by mistake (check new imports; `esbuild --analyze` lists the largest inputs)',
        );
    }

    // A fresh folder, so a file from an older build (a removed policy.json) is never deployed by VS Code.
    rmSync(stagingDir, { recursive: true, force: true });
    mkdirSync(stagingDir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) {
        writeFileSync(path.join(stagingDir, name), bytes);
    }
    writeFileSync(zipPath, zip);

    return {
        stagingDir,
        zipPath,
        entries,
        files: Object.keys(files).sort(),
        bundleBytes: Buffer.byteLength(bundle.js),
        mapBytes: Buffer.byteLength(bundle.map),
        zipBytes: zip.length,
        training,
    };
}

async function main(): Promise<void> {
    const result = await buildPackage();
    console.log(`Bundled ${result.entries.length} function files: ${result.entries.join(', ')}`);
    console.log(`app.js ${formatBytes(result.bundleBytes)}, app.js.map ${formatBytes(result.mapBytes)}`);
    console.log(`Staged ${path.relative(process.cwd(), result.stagingDir) || '.'}/: ${result.files.join(', ')}`);
    console.log(`Zip ${formatBytes(result.zipBytes)} (limit ${formatBytes(maxZipBytes)})`);
    console.log(`Code cache trained on: ${result.training.join('; ') || 'events against closed ports'}`);
    // The last line is the path alone, for scripts and CI steps that pick it up.
    console.log(path.relative(process.cwd(), result.zipPath));
}

if (require.main === module) {
    main().catch((err: unknown) => {
        console.error(`package failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
    });
}
