/**
 * The Teams app package: the manifest, filled, is valid against Microsoft's schema of its version; the bot is there
 * for teams and personal chats; the icons are what Teams accepts; and the builder refuses to guess a bot id.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import {
    buildTeamsApp,
    checkIcons,
    fillManifest,
    parseEnvValues,
    TeamsAppError,
    validateManifest,
} from '../../scripts/teams-app';
import {
    colorIconSize,
    decodePng,
    drawColorIcon,
    drawOutlineIcon,
    outlineIconSize,
    readPngHeader,
} from '../../scripts/teams-app-icons';

const root = path.join(__dirname, '..', '..');
const appDir = path.join(root, 'teams-app');
const sampleBotId = '3f2a8c1e-5b7d-4e9f-a1c2-0d4e6f8a9b1c';
const template: unknown = JSON.parse(readFileSync(path.join(appDir, 'manifest.json'), 'utf8'));
const colorPng = readFileSync(path.join(appDir, 'color.png'));
const outlinePng = readFileSync(path.join(appDir, 'outline.png'));
const noAzd = () => undefined;

interface Bot {
    botId: string;
    scopes: string[];
    supportsFiles: boolean;
    isNotificationOnly: boolean;
}

let outDir: string;

beforeAll(() => {
    outDir = mkdtempSync(path.join(os.tmpdir(), 'pec-gate-teams-app-'));
});

afterAll(() => {
    rmSync(outDir, { recursive: true, force: true });
});

describe('the Teams app manifest', () => {
    const filled = fillManifest(template, {
        BOT_ID: sampleBotId,
        APP_VERSION: '1.2.3',
        APP_HOST: 'pec-gate-abc.azurewebsites.net',
    });

    it('is valid against the official schema of its manifestVersion once filled', () => {
        expect(validateManifest(filled)).toEqual([]);
        const schemas = 'https://developer.microsoft.com/en-us/json-schemas/teams';
        expect(filled.$schema).toBe(`${schemas}/v${String(filled.manifestVersion)}/MicrosoftTeams.schema.json`);
    });

    it('fills every placeholder: the bot id is the app id and the bot id, and the host is the valid domain', () => {
        expect(JSON.stringify(filled)).not.toContain('${{');
        expect(filled.id).toBe(sampleBotId);
        expect(filled.version).toBe('1.2.3');
        expect(filled.validDomains).toEqual(['pec-gate-abc.azurewebsites.net']);
    });

    it('declares one conversational bot for teams and personal chats, without files', () => {
        const bots = filled.bots as Bot[];
        expect(bots).toHaveLength(1);
        expect(bots[0]).toMatchObject({ botId: sampleBotId, supportsFiles: false, isNotificationOnly: false });
        expect([...(bots[0]?.scopes ?? [])].sort()).toEqual(['personal', 'team']);
    });

    it('drops the valid domain rather than shipping a placeholder when there is no host, and stays valid', () => {
        const withoutHost = fillManifest(template, { BOT_ID: sampleBotId, APP_VERSION: '1.2.3' });
        expect(withoutHost).not.toHaveProperty('validDomains');
        expect(validateManifest(withoutHost)).toEqual([]);
    });

    it('is checked for real: the schema refuses a bad bot id and an unknown property', () => {
        const bad = { ...filled, bots: [{ botId: 'not-a-guid', scopes: ['team'] }], colour: 'blue' };
        const problems = validateManifest(bad);
        expect(problems).toEqual(
            expect.arrayContaining([
                expect.stringMatching(/^\/bots\/0\/botId: must match pattern/),
                expect.stringMatching(/^\/: must NOT have additional properties \(colour\)/),
            ]),
        );
    });

    it('refuses a placeholder it has no value for', () => {
        const extra = { ...(template as object), packageName: '${{PACKAGE}}' };
        expect(() => fillManifest(extra, { BOT_ID: sampleBotId, APP_VERSION: '1.0.0' })).toThrow(
            /no value for the placeholder \$\{\{PACKAGE\}\}/,
        );
    });
});

describe('the Teams app icons', () => {
    it('are a 192×192 colour icon and a 32×32 outline icon, both PNG', () => {
        expect(readPngHeader(colorPng)).toMatchObject({ width: colorIconSize, height: colorIconSize, bitDepth: 8 });
        expect(readPngHeader(outlinePng)).toMatchObject({
            width: outlineIconSize,
            height: outlineIconSize,
            colourType: 6, // RGBA: the outline needs its alpha channel
        });
        expect(checkIcons({ color: colorPng, outline: outlinePng })).toEqual([]);
    });

    it('has an outline in white on a transparent background', () => {
        const { width, pixels } = decodePng(outlinePng);
        const alphaAt = (x: number, y: number) => pixels[(y * width + x) * 4 + 3];
        // The corners and the shield's inside are background; the left edge of the shield half-way down is drawn.
        expect([alphaAt(0, 0), alphaAt(31, 0), alphaAt(0, 31), alphaAt(31, 31), alphaAt(16, 12)]).toEqual([
            0, 0, 0, 0, 0,
        ]);
        expect(alphaAt(6, 12)).toBe(255);
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3] !== 0) {
                expect([pixels[i], pixels[i + 1], pixels[i + 2]]).toEqual([255, 255, 255]);
            }
        }
    });

    it('has an opaque colour icon', () => {
        const { pixels } = decodePng(colorPng);
        expect(pixels.filter((_, i) => i % 4 === 3 && pixels[i] !== 255)).toHaveLength(0);
    });

    it('are the images scripts/teams-app-icons.ts draws (rerun it after changing the drawing)', () => {
        expect(Buffer.from(decodePng(colorPng).pixels).equals(Buffer.from(drawColorIcon().pixels))).toBe(true);
        expect(Buffer.from(decodePng(outlinePng).pixels).equals(Buffer.from(drawOutlineIcon().pixels))).toBe(true);
    });

    it('refuses an outline that is not white on transparent, and a wrong size', () => {
        const problems = checkIcons({ color: outlinePng, outline: colorPng });
        expect(problems).toEqual([
            'color.png: must be 192×192 pixels, is 32×32',
            'outline.png: must be 32×32 pixels, is 192×192',
        ]);
    });
});

describe('the Teams app builder', () => {
    it('refuses to run without a bot id, naming BOT_ID', () => {
        expect(() => buildTeamsApp({ outDir, env: {}, azdValues: noAzd })).toThrow(TeamsAppError);
        expect(() => buildTeamsApp({ outDir, env: {}, azdValues: noAzd })).toThrow(/^BOT_ID is not set/);
        expect(() => buildTeamsApp({ outDir, env: { BOT_ID: '  ' }, azdValues: () => ({}) })).toThrow(
            /BOT_ID is not set.*azd env get-values has neither/,
        );
    });

    it('refuses a bot id that is not a GUID, naming where it came from', () => {
        expect(() => buildTeamsApp({ outDir, env: { BOT_ID: 'pec-gate-bot' }, azdValues: noAzd })).toThrow(
            /^BOT_ID must be a GUID/,
        );
        expect(() => buildTeamsApp({ outDir, env: { AZURE_CLIENT_ID: '1234' }, azdValues: noAzd })).toThrow(
            /^AZURE_CLIENT_ID must be a GUID/,
        );
        expect(() => buildTeamsApp({ outDir, env: {}, azdValues: () => ({ BOT_ID: '{}' }) })).toThrow(
            /^azd BOT_ID must be a GUID/,
        );
    });

    it('refuses a host that is not one', () => {
        expect(() =>
            buildTeamsApp({ outDir, env: { BOT_ID: sampleBotId, APP_HOST: 'not a host' }, azdValues: noAzd }),
        ).toThrow(/^APP_HOST must be the Function App's host name/);
    });

    it('takes BOT_ID before AZURE_CLIENT_ID, and the environment before azd', () => {
        const other = '11111111-2222-4333-8444-555555555555';
        const azd = () => ({ BOT_ID: other, APP_HOST: 'from-azd.azurewebsites.net' });
        const result = buildTeamsApp({ outDir, env: { AZURE_CLIENT_ID: other, BOT_ID: sampleBotId }, azdValues: azd });
        expect(result).toMatchObject({ botId: sampleBotId, botIdFrom: 'BOT_ID', appHostFrom: 'azd APP_HOST' });
    });

    it('falls back to azd: its AZURE_CLIENT_ID and the host of its SERVICE_API_URI', () => {
        const result = buildTeamsApp({
            outDir,
            env: {},
            azdValues: () =>
                parseEnvValues(
                    [
                        'AZURE_ENV_NAME="dev"',
                        `AZURE_CLIENT_ID="${sampleBotId.toUpperCase()}"`,
                        'SERVICE_API_URI="https://pec-gate-dev.azurewebsites.net/"',
                    ].join('\n'),
                ),
        });
        expect(result).toMatchObject({
            botId: sampleBotId,
            botIdFrom: 'azd AZURE_CLIENT_ID',
            appHost: 'pec-gate-dev.azurewebsites.net',
        });
        expect(result.manifest.validDomains).toEqual(['pec-gate-dev.azurewebsites.net']);
    });

    it('writes a zip with the filled manifest and both icons at its root', () => {
        const result = buildTeamsApp({ outDir, env: { BOT_ID: sampleBotId }, azdValues: noAzd });
        expect(result.zipPath).toBe(path.join(outDir, 'teams-app.zip'));
        const bytes = readFileSync(result.zipPath);
        const entries = unzipSync(bytes);
        expect(Object.keys(entries).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
        const manifest = JSON.parse(strFromU8(entries['manifest.json'] ?? new Uint8Array())) as Record<string, unknown>;
        expect(manifest).toEqual(result.manifest);
        expect(manifest.id).toBe(sampleBotId);
        expect(Buffer.from(entries['outline.png'] ?? []).equals(outlinePng)).toBe(true);
        // Same inputs, same bytes.
        const again = buildTeamsApp({ outDir, env: { BOT_ID: sampleBotId }, azdValues: noAzd });
        expect(readFileSync(again.zipPath).equals(bytes)).toBe(true);
    });

    it('exits 1 from the command line, naming BOT_ID, when none is set', () => {
        // PATH holds node alone, so a developer's azd (and its environment) cannot supply one.
        const env: NodeJS.ProcessEnv = { PATH: path.dirname(process.execPath), HOME: os.tmpdir() };
        const run = spawnSync(process.execPath, [require.resolve('tsx/cli'), 'scripts/teams-app.ts'], {
            cwd: root,
            env,
            encoding: 'utf8',
            timeout: 30_000,
        });
        expect(run.status).toBe(1);
        expect(run.stderr).toMatch(/teams-app failed: BOT_ID is not set/);
    });
});

describe('azd env get-values parsing', () => {
    it('reads quoted, escaped and bare values', () => {
        expect(
            parseEnvValues('A="x"\nB="with \\"quotes\\" and \\\\"\r\nC=bare\n# comment\nexport D=\'single\'\n\n'),
        ).toEqual({ A: 'x', B: 'with "quotes" and \\', C: 'bare', D: 'single' });
    });
});
