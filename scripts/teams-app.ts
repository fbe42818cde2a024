/**
 * `npm run teams-app`: the Teams app package, dist/teams-app.zip, to upload in Teams (Apps → Manage your apps →
 * Upload an app) or in the Teams admin center. It holds teams-app/manifest.json (placeholders filled) and the icons.
 *
 * - `${{BOT_ID}}`: the bot's Microsoft App ID, which for a bot of type UserAssignedMSI is the client id of the Function
 *   App's user-assigned managed identity. It is also the app's id: one id to look for in the admin center. Taken from
 *   BOT_ID, else AZURE_CLIENT_ID, else the same two names in `azd env get-values` when azd is installed.
 * - `${{APP_HOST}}`: the Function App's host name, for validDomains, from APP_HOST, FUNCTION_APP_HOST or
 *   SERVICE_API_URI (azd's name for a service's URL), in the environment or azd's. A bot needs no valid domains, so
 *   without one the entry is dropped rather than shipped as a placeholder.
 * - `${{APP_VERSION}}`: package.json's version. Teams only replaces an uploaded app when the version grows.
 *
 * Before zipping, the filled manifest is validated against the official schema of its manifestVersion (from
 * @microsoft/app-manifest), and the icons are checked the way Teams checks them on upload: 192×192 colour, 32×32
 * outline in white on transparent. A mistake found here is cheaper than one found by the upload dialog.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { colorIconSize, decodePng, outlineIconSize, readPngHeader } from './teams-app-icons';
import { deterministicZip, formatBytes } from './zip';

const defaultRoot = path.resolve(__dirname, '..');

/** A mistake of the caller's (a missing or malformed setting, an invalid manifest): printed without a stack. */
export class TeamsAppError extends Error {
    override name = 'TeamsAppError';
}

export type Values = Readonly<Record<string, string | undefined>>;

export interface TeamsAppOptions {
    /** The repository root; by default the parent of scripts/. */
    rootDir?: string;
    /** Where teams-app.zip is written; by default `<rootDir>/dist`. */
    outDir?: string;
    /** The environment to read BOT_ID and friends from; by default process.env. */
    env?: Values;
    /** azd's environment values, or undefined when there is no azd (or no azd environment); by default runs azd. */
    azdValues?: () => Values | undefined;
}

export interface TeamsAppResult {
    zipPath: string;
    zipBytes: number;
    manifest: Record<string, unknown>;
    botId: string;
    /** Where the bot id came from, e.g. `BOT_ID` or `azd AZURE_CLIENT_ID`. */
    botIdFrom: string;
    appHost?: string;
    appHostFrom?: string;
}

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const botIdNames = ['BOT_ID', 'AZURE_CLIENT_ID'] as const;
const appHostNames = ['APP_HOST', 'FUNCTION_APP_HOST', 'SERVICE_API_URI'] as const;

/** Parses dotenv-style `KEY="value"` lines, as `azd env get-values` prints them. */
export function parseEnvValues(text: string): Record<string, string> {
    const values: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
        const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(.*))\s*$/.exec(
            line,
        );
        if (!match?.[1]) {
            continue;
        }
        const [, key, doubleQuoted, singleQuoted, bare] = match;
        values[key] =
            doubleQuoted !== undefined
                ? doubleQuoted.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
                : (singleQuoted ?? bare ?? '').trim();
    }
    return values;
}

/**
 * `azd env get-values` of the current azd environment, or undefined when azd is not installed or has no environment
 * here: both only mean the values must come from elsewhere, which the missing-BOT_ID message says.
 */
export function readAzdValues(cwd: string = defaultRoot): Values | undefined {
    try {
        const out = execFileSync('azd', ['env', 'get-values'], {
            cwd,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
            timeout: 30_000,
        });
        return parseEnvValues(out);
    } catch {
        return undefined;
    }
}

interface Found {
    value: string;
    from: string;
}

/** The first of `names` set (non-empty) in the environment, then in azd's values; azd is asked at most once. */
function firstOf(names: readonly string[], env: Values, azd: () => Values | undefined): Found | undefined {
    for (const name of names) {
        const value = env[name]?.trim();
        if (value) {
            return { value, from: name };
        }
    }
    const values = azd();
    for (const name of names) {
        const value = values?.[name]?.trim();
        if (value) {
            return { value, from: `azd ${name}` };
        }
    }
    return undefined;
}

export interface Settings {
    botId: string;
    botIdFrom: string;
    appHost?: string;
    appHostFrom?: string;
}

/** Reads and checks BOT_ID (or AZURE_CLIENT_ID) and APP_HOST; every error names the setting it is about. */
export function resolveSettings(env: Values, azdValues: () => Values | undefined): Settings {
    let azd: { values: Values | undefined } | undefined;
    const cachedAzd = () => (azd ??= { values: azdValues() }).values;

    const bot = firstOf(botIdNames, env, cachedAzd);
    if (!bot) {
        const azdNote = cachedAzd() ? 'azd env get-values has neither' : 'no azd environment was found';
        throw new TeamsAppError(
            `BOT_ID is not set: set BOT_ID to the bot's Microsoft App ID (the client id of the Function App's ` +
                `user-assigned managed identity), or AZURE_CLIENT_ID; ${azdNote}`,
        );
    }
    if (!guidPattern.test(bot.value)) {
        throw new TeamsAppError(
            `${bot.from} must be a GUID (the bot's Microsoft App ID, the managed identity's client id), got ` +
                `${JSON.stringify(bot.value.slice(0, 60))}`,
        );
    }
    const settings: Settings = { botId: bot.value.toLowerCase(), botIdFrom: bot.from };

    const host = firstOf(appHostNames, env, cachedAzd);
    if (host) {
        settings.appHost = hostOf(host);
        settings.appHostFrom = host.from;
    }
    return settings;
}

/** A host name from a host or a URL (azd's SERVICE_API_URI is a URL); validDomains wants the host alone. */
function hostOf(found: Found): string {
    let host = found.value;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) {
        try {
            host = new URL(host).hostname;
        } catch {
            host = '';
        }
    }
    host = host.toLowerCase();
    if (!/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/.test(host)) {
        throw new TeamsAppError(
            `${found.from} must be the Function App's host name (e.g. pec-gate.azurewebsites.net) or its https URL, ` +
                `got ${JSON.stringify(found.value.slice(0, 80))}`,
        );
    }
    return host;
}

export interface ManifestValues {
    BOT_ID: string;
    APP_VERSION: string;
    APP_HOST?: string;
}

const placeholder = /\$\{\{([A-Z0-9_]+)\}\}/g;

/**
 * Fills the `${{NAME}}` placeholders in the template's string values (never in the JSON text, so no value can change
 * the JSON's structure). validDomains entries with APP_HOST are dropped when there is no host, and the list too when
 * that empties it. A placeholder with no value is an error, not left in.
 */
export function fillManifest(template: unknown, values: ManifestValues): Record<string, unknown> {
    const lookup: Record<string, string | undefined> = { ...values };
    const fill = (node: unknown, where: string): unknown => {
        if (typeof node === 'string') {
            return node.replace(placeholder, (_, name: string) => {
                const value = lookup[name];
                if (value === undefined) {
                    throw new TeamsAppError(`manifest ${where}: no value for the placeholder \${{${name}}}`);
                }
                return value;
            });
        }
        if (Array.isArray(node)) {
            return node.map((item, i) => fill(item, `${where}/${i}`));
        }
        if (typeof node === 'object' && node !== null) {
            return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, `${where}/${k}`)]));
        }
        return node;
    };
    if (typeof template !== 'object' || template === null || Array.isArray(template)) {
        throw new TeamsAppError('teams-app/manifest.json must hold a JSON object');
    }
    const source = { ...(template as Record<string, unknown>) };
    if (values.APP_HOST === undefined && Array.isArray(source.validDomains)) {
        const kept = source.validDomains.filter((d) => !(typeof d === 'string' && d.includes('${{APP_HOST}}')));
        if (kept.length > 0) {
            source.validDomains = kept;
        } else {
            delete source.validDomains;
        }
    }
    return fill(source, '') as Record<string, unknown>;
}

/** The official JSON schema of a manifest version, as @microsoft/app-manifest ships it. */
export function manifestSchemaPath(manifestVersion: string): string {
    if (!/^\d+\.\d+$/.test(manifestVersion)) {
        throw new TeamsAppError(
            `manifest manifestVersion must look like "1.19", got ${JSON.stringify(manifestVersion)}`,
        );
    }
    const packageJson = require.resolve('@microsoft/app-manifest/package.json');
    return path.join(
        path.dirname(packageJson),
        'build',
        'json-schemas',
        'teams',
        `v${manifestVersion}`,
        'MicrosoftTeams.schema.json',
    );
}

const validators = new Map<string, ValidateFunction>();

/** The compiled schema of a manifest version; compiling takes a few hundred milliseconds, so once per version. */
function schemaValidator(manifestVersion: string): ValidateFunction {
    let validate = validators.get(manifestVersion);
    if (!validate) {
        const schema = JSON.parse(readFileSync(manifestSchemaPath(manifestVersion), 'utf8')) as object;
        // strict: false because the Teams schemas carry annotations Ajv does not know (and need not).
        const ajv = new Ajv({ allErrors: true, strict: false });
        addFormats(ajv);
        validate = ajv.compile(schema);
        validators.set(manifestVersion, validate);
    }
    return validate;
}

/**
 * Validates a filled manifest against the official schema (draft-04, hence ajv-draft-04) and this app's own rules.
 * Returns the problems, each with its JSON pointer; empty when valid.
 */
export function validateManifest(manifest: Record<string, unknown>): string[] {
    const version = manifest.manifestVersion;
    if (typeof version !== 'string') {
        return ['/manifestVersion: required, e.g. "1.19"'];
    }
    let validate: ValidateFunction;
    try {
        validate = schemaValidator(version);
    } catch (err) {
        const reason = err instanceof TeamsAppError ? err.message : 'no such version in @microsoft/app-manifest';
        return [`/manifestVersion: no schema for ${JSON.stringify(version)}: ${reason}`];
    }
    const problems: string[] = [];
    if (!validate(manifest)) {
        for (const e of validate.errors ?? []) {
            const extra = 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : '';
            problems.push(`${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra}`);
        }
    }
    const leftOver = JSON.stringify(manifest).match(placeholder);
    if (leftOver) {
        problems.push(`placeholders left unfilled: ${[...new Set(leftOver)].join(', ')}`);
    }
    if (typeof manifest.version !== 'string' || !/^\d+\.\d+\.\d+$/.test(manifest.version)) {
        // The schema allows any string; Teams' upload wants MAJOR.MINOR.PATCH, digits only.
        problems.push(`/version: must be MAJOR.MINOR.PATCH, got ${JSON.stringify(manifest.version)}`);
    }
    return problems;
}

/** Checks the icons as Teams does on upload; returns the problems, each naming the file. */
export function checkIcons(icons: { color: Uint8Array; outline: Uint8Array }, names = defaultIconNames): string[] {
    const problems: string[] = [];
    const check = (name: string, bytes: Uint8Array, size: number): boolean => {
        try {
            const header = readPngHeader(bytes);
            if (header.width !== size || header.height !== size) {
                problems.push(`${name}: must be ${size}×${size} pixels, is ${header.width}×${header.height}`);
                return false;
            }
            return true;
        } catch (err) {
            problems.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
            return false;
        }
    };
    check(names.color, icons.color, colorIconSize);
    if (check(names.outline, icons.outline, outlineIconSize)) {
        try {
            const { pixels } = decodePng(icons.outline);
            let transparent = 0;
            let coloured = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                if (pixels[i + 3] === 0) {
                    transparent++;
                } else if (pixels[i] !== 255 || pixels[i + 1] !== 255 || pixels[i + 2] !== 255) {
                    coloured++;
                }
            }
            if (transparent === 0) {
                problems.push(`${names.outline}: must have a transparent background`);
            }
            if (coloured > 0) {
                problems.push(`${names.outline}: must be white only; ${coloured} visible pixels are not white`);
            }
        } catch (err) {
            problems.push(`${names.outline}: ${err instanceof Error ? err.message : String(err)}`);
        }
    }
    return problems;
}

const defaultIconNames = { color: 'color.png', outline: 'outline.png' };

/** The app version Teams sees: package.json's. */
function appVersion(rootDir: string): string {
    const pkg = JSON.parse(readFileSync(path.join(rootDir, 'package.json'), 'utf8')) as { version?: unknown };
    if (typeof pkg.version !== 'string') {
        throw new TeamsAppError('package.json has no version for the manifest');
    }
    return pkg.version;
}

export function buildTeamsApp(options: TeamsAppOptions = {}): TeamsAppResult {
    const rootDir = path.resolve(options.rootDir ?? defaultRoot);
    const outDir = path.resolve(options.outDir ?? path.join(rootDir, 'dist'));
    const appDir = path.join(rootDir, 'teams-app');
    const settings = resolveSettings(options.env ?? process.env, options.azdValues ?? (() => readAzdValues(rootDir)));

    const template: unknown = JSON.parse(readFileSync(path.join(appDir, 'manifest.json'), 'utf8'));
    const manifest = fillManifest(template, {
        BOT_ID: settings.botId,
        APP_VERSION: appVersion(rootDir),
        ...(settings.appHost ? { APP_HOST: settings.appHost } : {}),
    });
    const manifestProblems = validateManifest(manifest);
    if (manifestProblems.length > 0) {
        throw new TeamsAppError(
            `the filled teams-app/manifest.json is not valid:\n${manifestProblems.map((p) => `  - ${p}`).join('\n')}`,
        );
    }

    // The icons are the files the manifest names, so renaming one in the manifest cannot ship a stale file.
    const iconNames = manifest.icons as { color: string; outline: string };
    const icons = {
        color: readFileSync(path.join(appDir, iconNames.color)),
        outline: readFileSync(path.join(appDir, iconNames.outline)),
    };
    const iconProblems = checkIcons(icons, iconNames);
    if (iconProblems.length > 0) {
        throw new TeamsAppError(
            `the Teams app icons are not valid:\n${iconProblems.map((p) => `  - ${p}`).join('\n')}`,
        );
    }

    const zip = deterministicZip({
        'manifest.json': Buffer.from(`${JSON.stringify(manifest, null, 4)}\n`),
        [iconNames.color]: icons.color,
        [iconNames.outline]: icons.outline,
    });
    mkdirSync(outDir, { recursive: true });
    const zipPath = path.join(outDir, 'teams-app.zip');
    writeFileSync(zipPath, zip);
    return {
        zipPath,
        zipBytes: zip.length,
        manifest,
        botId: settings.botId,
        botIdFrom: settings.botIdFrom,
        ...(settings.appHost ? { appHost: settings.appHost, appHostFrom: settings.appHostFrom } : {}),
    };
}

function main(): void {
    const result = buildTeamsApp();
    console.log(`Bot and app id ${result.botId} (from ${result.botIdFrom})`);
    console.log(
        result.appHost
            ? `validDomains: ${result.appHost} (from ${result.appHostFrom})`
            : `validDomains left out: none of ${appHostNames.join(', ')} is set`,
    );
    const { version, manifestVersion } = result.manifest;
    console.log(`Manifest ${String(version)} valid against the Teams schema v${String(manifestVersion)}`);
    console.log(`Zip ${formatBytes(result.zipBytes)}`);
    // The last line is the path alone, for scripts and CI steps that pick it up.
    console.log(path.relative(process.cwd(), result.zipPath));
}

if (require.main === module) {
    try {
        main();
    } catch (err) {
        // A TeamsAppError is the user's to fix and says what to do; anything else is a bug, so its stack helps.
        const message =
            err instanceof TeamsAppError
                ? err.message
                : err instanceof Error
                  ? (err.stack ?? err.message)
                  : String(err);
        console.error(`teams-app failed: ${message}`);
        process.exit(1);
    }
}
