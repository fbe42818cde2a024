/**
 * The operators' CLI: what is pending, what happened to a request, a lost card posted again, and the audit chains
 * verified and exported. It reads the app's own settings (the environment, then local.settings.json's Values), so
 * next to `func start` it sees the same Azurite, and with `AzureWebJobsStorage__accountName` the deployed tables
 * through the developer's az login. The commands live in src/ops/; this file parses argv and wires them.
 *
 *   npm run pec -- list
 *   npm run pec -- --help
 */
import { once } from 'node:events';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, ensureErrorType } from '../src/domain/errors';
import { exportCommand, verifyCommand } from '../src/ops/audit';
import {
    developerCredential,
    mergeSettings,
    openStores,
    readLocalSettings,
    readStorageTarget,
    type OpsStores,
    type Settings,
} from '../src/ops/connection';
import { isServerKind, serverKinds } from '../src/domain/ids';
import { isRequestId } from '../src/domain/request';
import { listCommand } from '../src/ops/list';
import { exitCodes, parseSince, safe, terminalSafe, type Output } from '../src/ops/output';
import { resendCommand } from '../src/ops/resend';
import { auditTrailCommand, showCommand } from '../src/ops/show';

export const usage = `Usage: npm run pec -- <command> [options]

Commands:
  list [--all] [--since 7d] [--kind KIND[,KIND]] [--json]
        Requests that need attention (pending, decided, failed) and those that finished (applied, superseded,
        expired) within --since (default 7d); --all lists every request. --kind keeps those on these resource kinds
        (ids as in WATCHED_RESOURCE_KINDS: postgres-flexible, sql-server, key-vault, ...).
  show ID [--json]
        One request: its fields, its audit trail and whether the chain verifies.
  resend ID
        Posts a pending or decided request's card again, through the app's Teams channel (or webhook), replacing a
        lost one; the old card's buttons stop working. Needs the app's full settings.
  audit ID [--json]
        One request's audit trail.
  audit verify [--json]
        Checks every request's hash chain; names each broken one and what is wrong with it.
  audit export [--since DATE] [--out FILE]
        Every audit entry as a JSON line (by request, then sequence), to stdout or FILE, for a SIEM.

DATE and --since: a duration back from now (30m, 12h, 7d, 2w) or a date (2026-11-01, 2026-11-01T08:00:00Z).

Settings, as the app reads them, from the environment, else from ./local.settings.json's Values:
  AzureWebJobsStorage                a connection string; UseDevelopmentStorage=true for Azurite
  AzureWebJobsStorage__accountName   identity-based access with your az login (Storage Table Data Reader;
                                     resend needs Storage Table Data Contributor)
  REQUESTS_TABLE, AUDIT_TABLE        default pecrequests, pecaudit

Exit codes: 0 done; 1 failed, not found, refused, or a chain does not verify; 2 usage.`;

class UsageError extends Error {}

export interface MainOptions {
    env?: NodeJS.ProcessEnv;
    /** Where local.settings.json is looked for. */
    cwd?: string;
    now?: Date;
}

export async function main(argv: readonly string[], raw: Output, options: MainOptions = {}): Promise<number> {
    const output = terminalSafe(raw);
    const env = options.env ?? process.env;
    const now = options.now ?? new Date();
    const settings = lazySettings(env, options.cwd ?? process.cwd());
    const stores = (): OpsStores => {
        const { settings: values, fromFile } = settings();
        const target = readStorageTarget(values, fromFile);
        output.err(`# ${target.description}`);
        const credential = developerCredential(values);
        return openStores(target, () => credential);
    };
    try {
        const [command, ...rest] = argv;
        switch (command) {
            case 'list': {
                const { values } = parse(rest, { all: 'boolean', since: 'string', json: 'boolean', kind: 'string' }, 0);
                const since = sinceOption(values.since ?? '7d', now);
                const kinds = kindOption(values.kind);
                return await listCommand(
                    stores(),
                    { all: values.all === true, since, now, json: values.json === true, ...(kinds ? { kinds } : {}) },
                    output,
                );
            }
            case 'show': {
                const { values, positionals } = parse(rest, { json: 'boolean' }, 1);
                return await showCommand(stores(), positionals[0] ?? '', { json: values.json === true, now }, output);
            }
            case 'resend': {
                const { positionals } = parse(rest, {}, 1);
                // The full settings, as the app reads them: the card goes out through the app's own channel. Loaded
                // here only, so the read-only commands neither need those settings nor load the app's adapters.
                const [{ loadConfig }, { createDeps }] = await Promise.all([
                    import('../src/config'),
                    import('../src/runtime'),
                ]);
                const deps = createDeps(loadConfig(settings().settings as NodeJS.ProcessEnv));
                try {
                    return await resendCommand(deps, positionals[0] ?? '', output, { operator: operator() });
                } finally {
                    // The audit anchors are written behind the steps, as in the app: the command ends when they are.
                    await deps.settle?.();
                }
            }
            case 'audit':
                return await audit(rest, stores, output, now);
            case undefined:
            case '--help':
            case '-h':
            case 'help':
                throw new UsageError('help');
            default:
                throw new UsageError(`unknown command ${JSON.stringify(safe(command, 40))}`);
        }
    } catch (err) {
        if (err instanceof UsageError) {
            // Asked for: the usage is the answer, on stdout. A mistake: the usage explains it, with the errors.
            if (err.message === 'help') {
                output.out(usage);
            } else {
                output.err(`pec: ${err.message}`);
                output.err('');
                output.err(usage);
            }
            return exitCodes.usage;
        }
        const e = ensureErrorType(err);
        output.err(e instanceof ConfigError ? e.message : `pec: ${safe(e.message, 2000, { multiline: true })}`);
        return exitCodes.failed;
    }
}

async function audit(argv: readonly string[], stores: () => OpsStores, output: Output, now: Date): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'verify') {
        const { values } = parse(rest, { json: 'boolean' }, 0);
        return verifyCommand(stores(), { json: values.json === true }, output);
    }
    if (sub === 'export') {
        const { values } = parse(rest, { since: 'string', out: 'string' }, 0);
        const since = values.since === undefined ? undefined : sinceOption(values.since, now);
        return exportTo(stores(), since, values.out, output);
    }
    if (sub === undefined) {
        throw new UsageError('audit needs a request id, verify or export');
    }
    const { values, positionals } = parse(argv, { json: 'boolean' }, 1);
    return auditTrailCommand(stores(), positionals[0] ?? '', { json: values.json === true }, output);
}

/**
 * To stdout, or to FILE through FILE.partial, renamed when complete: a SIEM that picks up the file never reads half an
 * export. Owner-only permissions, as the entries name people and their decisions.
 */
async function exportTo(stores: OpsStores, since: Date | undefined, file: string | undefined, output: Output) {
    if (!file) {
        const counts = await exportCommand(stores, since ? { since } : {}, (line) => output.out(line));
        output.err(`exported ${counts.entries} entries of ${counts.requests} requests`);
        return exitCodes.ok;
    }
    const partial = `${file}.partial`;
    const stream = createWriteStream(partial, { mode: 0o600 });
    let failure: Error | undefined;
    stream.on('error', (err) => {
        failure = err;
    });
    try {
        const counts = await exportCommand(stores, since ? { since } : {}, async (line) => {
            if (failure) {
                throw failure;
            }
            if (!stream.write(`${line}\n`)) {
                await once(stream, 'drain');
            }
        });
        await new Promise<void>((resolve, reject) =>
            stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
        if (failure) {
            throw failure;
        }
        renameSync(partial, file);
        output.err(`exported ${counts.entries} entries of ${counts.requests} requests to ${file}`);
        return exitCodes.ok;
    } catch (err) {
        stream.destroy();
        rmSync(partial, { force: true });
        throw err;
    }
}

type OptionTypes = Record<string, 'boolean' | 'string'>;

/** Strict parsing: an unknown option or a missing or extra argument is a usage error, never silently ignored. */
function parse<T extends OptionTypes>(argv: readonly string[], types: T, positionalCount: number) {
    let parsed;
    try {
        parsed = parseArgs({
            args: withIdsAsPositionals(argv),
            options: {
                ...Object.fromEntries(Object.entries(types).map(([k, type]) => [k, { type }])),
                help: { type: 'boolean', short: 'h' },
            },
            allowPositionals: true,
            strict: true,
        });
    } catch (err) {
        // parseArgs throws a TypeError; read its message even when it comes from another realm (a test's VM context).
        const message = (err as { message?: unknown } | undefined)?.message;
        throw new UsageError(typeof message === 'string' ? message : ensureErrorType(err).message);
    }
    if (parsed.values.help) {
        throw new UsageError('help');
    }
    if (parsed.positionals.length !== positionalCount) {
        throw new UsageError(
            positionalCount === 0
                ? `unexpected argument ${JSON.stringify(safe(parsed.positionals[0], 60))}`
                : parsed.positionals.length === 0
                  ? 'a request id is needed'
                  : `one request id, not ${parsed.positionals.length} arguments`,
        );
    }
    return parsed as {
        values: { [K in keyof T]?: T[K] extends 'boolean' ? boolean : string };
        positionals: string[];
    };
}

/**
 * A request id is 128 random bits in base64url, so one in 64 starts with `-`, and parseArgs would read it as an option
 * (`pec resend -Xq…` refused as an unknown option). An argument that is a whole request id is put after `--`, where
 * parseArgs takes everything as a positional, unless the caller already wrote `--` themselves.
 */
function withIdsAsPositionals(argv: readonly string[]): string[] {
    const ids = argv.filter((a) => a.startsWith('-') && isRequestId(a));
    if (ids.length === 0 || argv.includes('--')) {
        return [...argv];
    }
    return [...argv.filter((a) => !ids.includes(a)), '--', ...ids];
}

function sinceOption(text: string, now: Date): Date {
    const since = parseSince(text, now);
    if (!since) {
        throw new UsageError(`--since ${JSON.stringify(safe(text, 60))}: expected a duration (7d, 12h) or a date`);
    }
    return since;
}

/** `--kind a,b`: registered kind ids, so a typo is a usage error rather than an empty list. */
function kindOption(text: string | undefined): string[] | undefined {
    if (text === undefined) {
        return undefined;
    }
    const kinds = text
        .split(',')
        .map((k) => k.trim().toLowerCase())
        .filter(Boolean);
    const unknown = kinds.filter((k) => !isServerKind(k));
    if (kinds.length === 0 || unknown.length > 0) {
        throw new UsageError(
            `--kind ${JSON.stringify(safe(text, 60))}: expected resource kinds among ${serverKinds.join(', ')}`,
        );
    }
    return kinds;
}

/** The settings, read once and only when a command needs them (so `--help` works with a broken local file). */
function lazySettings(
    env: NodeJS.ProcessEnv,
    cwd: string,
): () => { settings: Settings; fromFile: ReadonlySet<string> } {
    let merged: { settings: Settings; fromFile: ReadonlySet<string> } | undefined;
    return () => (merged ??= mergeSettings(env, readLocalSettings(cwd)));
}

/** Who ran a resend, as the operating system says: a hint in the audit entry's detail, not a verified identity. */
function operator(): string {
    try {
        return `${os.userInfo().username}@${os.hostname()}`;
    } catch {
        return `unknown user@${os.hostname()}`;
    }
}

if (require.main === module) {
    // `pec audit export | head` closes the pipe early: that is the reader's choice, not a failure.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') {
            process.exit(exitCodes.ok);
        }
        process.stderr.write(`pec: cannot write to stdout: ${err.message}\n`);
        process.exit(exitCodes.failed);
    });
    const output: Output = {
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
    };
    main(process.argv.slice(2), output).then(
        (code) => {
            process.exitCode = code;
        },
        (err: unknown) => {
            process.stderr.write(`pec: ${ensureErrorType(err).stack ?? String(err)}\n`);
            process.exitCode = exitCodes.failed;
        },
    );
}
