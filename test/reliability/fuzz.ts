import { TableClient } from '@azure/data-tables';
import { HttpRequest, type EventGridEvent, type InvocationContext } from '@azure/functions';
import fc from 'fast-check';
import { decisionPage } from '../../functions/decisionPage';
import { pecEvents } from '../../functions/pecEvents';
import { teamsMessages } from '../../functions/teamsMessages';
import { ensureErrorType } from '../../src/domain/errors';
import { kindInfo } from '../../src/domain/ids';
import type { ApprovalRequest } from '../../src/domain/request';
import { onResourceEvent } from '../../src/workflow/onResourceEvent';
import { sweep } from '../../src/workflow/sweep';
import { encodeClientPrincipal } from '../../src/web/easyAuth';
import {
    cardActionActivity,
    cardLink,
    hiddenField,
    ids,
    openCard,
    people,
    privateEndpointId,
    resourceWriteEvent,
    seedPendingPec,
    testContext,
    web,
    type ClickOptions,
    type Harness,
    type SeededPec,
} from '../harness';

/**
 * Fuzzing the three entry points an outsider can reach: Event Grid events (`pecEvents`), Bot Framework activities
 * (`teamsMessages` at /api/messages) and the web page (`decisionPage` at /api/requests/{id}), through the registered
 * handlers against the harness's emulators and Azurite.
 *
 * Every generated input is invalid or unauthorised, so the expected outcome of each one is a refusal that changes
 * nothing. A case is a crash when the handler throws (for pecEvents that means Event Grid redelivers junk for a day),
 * when an HTTP handler answers 5xx, or when anything is written: a non-GET to ARM or to the Bot Connector, an entity
 * in the requests or audit table, or a message on the apply queue.
 *
 * The world the cases run against holds one real open request (card posted, web link and a CSRF token issued to Alice
 * known to the generators), so inputs get past the outer checks and exercise the inner ones. Where an input could
 * otherwise be valid (a genuine token, the real request, a valid CSRF token), the generator always applies at least
 * one "breaker" last, and each breaker on its own guarantees that nothing may be written. A breaker never relies on
 * another one, so the last one applied always holds whatever came before it. Only three inputs need them: an event
 * about the watched decoy (any event about the real server finds its request, and other servers are unwatched or
 * missing), an activity with the genuine token, and a POST with Alice's CSRF token (nothing else passes that check,
 * and a GET never writes).
 *
 * No jest globals here: a plain-node benchmark imports this too.
 */

export type FuzzTarget = 'events' | 'activities' | 'forms';
const targets: readonly FuzzTarget[] = ['events', 'activities', 'forms'];

export interface FuzzReport {
    cases: number;
    crashes: number;
    byTarget: Record<FuzzTarget, { cases: number; crashes: number }>;
    /** The first few crashes: target, case index, seed and path to replay it, what happened, the input (shortened). */
    examples: string[];
}

export interface FuzzOptions {
    cases: number;
    seed: number;
    log?: (line: string) => void;
    /**
     * How many cases run between two looks at Azurite (the in-memory emulators are checked after every case). A write
     * found there is traced to its case by replaying the batch, else by the entity's timestamp; 1 checks every case.
     */
    storageCheckEvery?: number;
    /** A world already prepared on this harness (by `prepareFuzzWorld`); by default the run prepares its own. */
    world?: FuzzWorld;
}

const maxExamples = 5;
/** Evaluations fast-check may spend shrinking one crash before the smallest input found so far is reported. */
const shrinkBudget = 150;

// ---------------------------------------------------------------------------------------------------------------
// The world

/** The harness state the generators aim at. */
export interface FuzzWorld {
    /** The one open request: its card in the channel, its web link. */
    request: ApprovalRequest;
    seeded: SeededPec;
    /** The plain link token from the card (only its hash is stored). */
    linkToken: string;
    /** A CSRF token issued to Alice for the request: with the link token, a POST as Alice would decide it. */
    csrf: string;
    /** A pending PEC on a watched server without a request: a valid event about it would open one. */
    watchedDecoy: SeededPec;
    /** A pending PEC in a subscription that is not watched. */
    unwatchedDecoy: SeededPec;
    /**
     * A connection created already Approved from a foreign tenant (the side door), reported once before the run: every
     * further event about it, valid or not, must write nothing (one alert per connection).
     */
    bypassedPecId: string;
    /** Authorization header values, by kind. Only `valid` passes. */
    tokens: Record<TokenKind, string>;
    /** `x-ms-client-principal` values, by kind. */
    principals: Record<PrincipalKind, string>;
    serviceUrl: string;
    /** A genuine card click on the request, as Teams sends it. */
    click(options: ClickOptions): Record<string, unknown>;
}

const tokenKinds = [
    'valid',
    'expired',
    'notYetValid',
    'wrongAudience',
    'wrongIssuer',
    'wrongServiceUrl',
    'noServiceUrl',
    'unknownKey',
    'unknownKeyKnownKid',
    'hs256',
    'algNone',
    'truncated',
    'tamperedPayload',
] as const;
type TokenKind = (typeof tokenKinds)[number];

const principalKinds = [
    'alice',
    'aliceUpperCase',
    'aliceAsRequester',
    'aliceForeignTenant',
    'aliceNoTenant',
    'bob',
    'mallory',
    'requester',
    'stranger',
    'otherProvider',
    'noObjectId',
    'objectIdNotGuid',
    'conflictingObjectIds',
    'tooManyClaims',
    'tooLarge',
    'claimsNotArray',
    'prototypeKeys',
    'notBase64',
    'base64NotJson',
    'base64Array',
] as const;
type PrincipalKind = (typeof principalKinds)[number];

const unwatchedSubscription = 'c0ffee00-1234-4abc-8def-00000000c0de';
// Names no generator produces by chance, so only the decoy generators reach the decoys.
const decoyServerName = 'waiting-decoy-7f3a9c';
const foreignServerName = 'foreign-decoy-2b8e1d';

/** Opens the real request, seeds the decoys, and collects what a legitimate caller would hold: tokens, CSRF. */
const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

export async function prepareFuzzWorld(h: Harness): Promise<FuzzWorld> {
    const { seeded, request } = await openCard(h, 'postgres-flexible');
    const watchedDecoy = seedPendingPec(h.arm, 'mysql-single', { serverName: decoyServerName });
    const unwatchedDecoy = seedPendingPec(h.arm, 'postgres-single', {
        serverName: foreignServerName,
        subscriptionId: unwatchedSubscription,
    });
    // The sweep's first look records the baseline, so that a connection approved afterwards is a bypass; then one is
    // created already Approved and its event reported, before the judge's first snapshot of storage.
    await sweep(h.deps, silentLog);
    const bypassedPecId = h.arm.addPec(seeded.serverId, {
        name: 'pe-side-door.5e1f0c2a',
        privateEndpointId: privateEndpointId(ids.foreign, 'pe-side-door'),
        status: 'Approved',
        description: 'Auto-Approved',
    });
    await onResourceEvent(h.deps, resourceWriteEvent(bypassedPecId), silentLog);
    const url = cardLink(h, request.id);
    const page = await withTrust('platform', () => web({ url }));
    const csrf = hiddenField(page.html, 'csrf');
    const serviceUrl = request.card?.serviceUrl ?? h.bot.serviceUrl;

    const sign = (claims: Record<string, unknown> = {}, options: Parameters<Harness['botIdentity']['sign']>[1] = {}) =>
        h.botIdentity.tokenFor({ audience: ids.client, serviceUrl, ...claims }, options);
    const valid = await sign();
    const [header = '', payload = '', signature = ''] = valid.split('.');
    const forgedPayload = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), aud: 'someone-else' }),
    ).toString('base64url');
    const tokens: Record<TokenKind, string> = {
        valid,
        expired: await sign({}, { issuedAt: Math.floor(Date.now() / 1000) - 3 * 3600, expiresInSeconds: 3600 }),
        notYetValid: await sign({}, { notBeforeSeconds: 3600 }),
        wrongAudience: await sign({ audience: '11111111-2222-4333-8444-555555555555' }),
        wrongIssuer: await sign({ iss: `https://sts.windows.net/${ids.tenant}/` }),
        wrongServiceUrl: await sign({ serviceUrl: 'https://evil.example.net/teams/' }),
        noServiceUrl: await sign({ serviceUrl: undefined }),
        unknownKey: await sign({}, { key: 'unknown' }),
        unknownKeyKnownKid: await sign({}, { key: 'unknown', kid: h.botIdentity.currentKid }),
        hs256: await sign({}, { alg: 'HS256' }),
        algNone: h.botIdentity.unsignedToken({ iss: h.botIdentity.issuer, aud: ids.client, serviceurl: serviceUrl }),
        truncated: valid.slice(0, -12),
        tamperedPayload: `${header}.${forgedPayload}.${signature}`,
    };

    const principal = encodeClientPrincipal;
    const raw = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
    const oidType = 'http://schemas.microsoft.com/identity/claims/objectidentifier';
    const tidType = 'http://schemas.microsoft.com/identity/claims/tenantid';
    const alice = { ...people.alice, tenantId: ids.tenant };
    const principals: Record<PrincipalKind, string> = {
        alice: principal(alice),
        aliceUpperCase: principal({ ...alice, objectId: alice.objectId.toUpperCase() }),
        // Alice's object id with the requester's UPN: a refused self-decision, which is audited by design.
        aliceAsRequester: principal({ ...alice, upn: people.dev.upn }),
        aliceForeignTenant: principal({ ...alice, tenantId: ids.foreignTenant }),
        aliceNoTenant: principal(people.alice),
        bob: principal({ ...people.bob, tenantId: ids.tenant }),
        mallory: principal({ ...people.mallory, tenantId: ids.tenant }),
        requester: principal({ ...people.dev, tenantId: ids.tenant }),
        stranger: principal({ objectId: '5ca1ab1e-0000-4000-8000-00000000cafe', tenantId: ids.tenant }),
        otherProvider: raw({ auth_typ: 'google', claims: [{ typ: oidType, val: alice.objectId }] }),
        noObjectId: raw({ auth_typ: 'aad', claims: [{ typ: tidType, val: ids.tenant }] }),
        objectIdNotGuid: raw({ auth_typ: 'aad', claims: [{ typ: 'oid', val: "a11ce' or 1 eq 1" }] }),
        conflictingObjectIds: raw({
            auth_typ: 'aad',
            claims: [
                { typ: oidType, val: alice.objectId },
                { typ: 'oid', val: people.bob.objectId },
                { typ: tidType, val: ids.tenant },
            ],
        }),
        tooManyClaims: raw({
            auth_typ: 'aad',
            claims: Array.from({ length: 1001 }, () => ({ typ: oidType, val: alice.objectId })),
        }),
        tooLarge: raw({ auth_typ: 'aad', claims: [{ typ: 'name', val: 'x'.repeat(20_000) }] }),
        claimsNotArray: raw({ auth_typ: 'aad', claims: { [oidType]: alice.objectId } }),
        prototypeKeys: Buffer.from(
            [
                '{"auth_typ":"aad","__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}},',
                `"claims":[{"typ":"oid","val":"${alice.objectId}","__proto__":{"val":"x"}},`,
                `{"typ":"tid","val":"${ids.tenant}"}]}`,
            ].join(''),
        ).toString('base64'),
        notBase64: 'eyJhdXRoX3R5cCI6ImFhZCJ9!!',
        base64NotJson: Buffer.from('<ClientPrincipal/>').toString('base64'),
        base64Array: raw([{ auth_typ: 'aad' }]),
    };
    return {
        request,
        seeded,
        linkToken: url.searchParams.get('token') ?? '',
        csrf,
        watchedDecoy,
        unwatchedDecoy,
        bypassedPecId,
        tokens,
        principals,
        serviceUrl,
        // A fixed activity id, so that a seed gives the same bodies every run.
        click: (options) => ({ ...cardActionActivity(h, request, options), id: 'f:fuzz' }),
    };
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

/** An event as Event Grid posts it: JSON text, parsed before the handler sees it, as the host does. */
export interface EventInput {
    json: string;
}

export interface ActivityInput {
    /** Which Authorization header, for the report. */
    auth: string;
    authorization: string | null;
    body: string;
    contentLength?: string;
}

type Trust = 'platform' | 'off' | 'dev' | 'devInAzure';

export interface FormInput {
    trust: Trust;
    /** Which principal header, for the report. */
    principal: string;
    principalHeader?: string;
    method: 'GET' | 'POST';
    id: string;
    query: [string, string][];
    contentType?: string;
    contentLength?: string;
    body?: string;
    /** The `Origin` a browser sent; absent: the app's own, as from the decision page; '' sends none. */
    origin?: string;
}

export type FuzzCase =
    | { target: 'events'; input: EventInput }
    | { target: 'activities'; input: ActivityInput }
    | { target: 'forms'; input: FormInput };

type Json = unknown;
type JsonObject = Record<string, Json>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const asObject = (v: unknown): JsonObject => (isObject(v) ? v : {});
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
/** Own properties even for `__proto__`, as JSON.parse makes them (assignment would set the prototype instead). */
function put(target: JsonObject, key: string, value: Json): void {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

type Mutation = { path: string[]; value: Json } | { path: string[]; remove: true };

/** Sets or removes a value at a path, making objects on the way where there are none (noise may do anything). */
function mutate(root: JsonObject, m: Mutation): void {
    let node = root;
    for (const key of m.path.slice(0, -1)) {
        const next = Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
        if (!isObject(next)) {
            put(node, key, {});
        }
        node = node[key] as JsonObject;
    }
    const last = m.path[m.path.length - 1] ?? '';
    if ('remove' in m) {
        delete node[last];
    } else {
        // A copy: generated values can be shared constants, which a later mutation would otherwise edit (or loop).
        put(node, last, m.value === undefined ? undefined : clone(m.value));
    }
}

// Strings that have broken parsers before: bidi and zero-width characters, control characters, traversal, injection.
const hostileStrings = [
    '',
    ' ',
    '\u202e',
    '\u2066evil\u2069',
    '\u200b',
    '\ufeff',
    '\u0000',
    '\u001b[31m',
    '\r\nerror: forged log line',
    '\u2028',
    '../..',
    '%2e%2e%2f',
    '%00',
    "' or 1 eq 1",
    '"; DROP TABLE x; --',
    '<script>alert(1)</script>',
    '${jndi:ldap://x}',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '𝕏😀ñ',
    'Ω'.repeat(300),
];
const huge = (n: number) => 'x'.repeat(n);

const stringArb = fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 30 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
    { weight: 3, arbitrary: fc.constantFrom(...hostileStrings) },
    { weight: 1, arbitrary: fc.constantFrom(1_000, 70_000).map(huge) },
);
/** Strings that may also hold lone surrogates: fine inside JSON, not in URLs or headers. */
const jsonStringArb = fc.oneof(stringArb, fc.string({ unit: 'binary', maxLength: 20 }));
const protoBomb: Json = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
const valueArb: fc.Arbitrary<Json> = fc.oneof(
    { weight: 5, arbitrary: jsonStringArb },
    { weight: 1, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, 1e308, [], {}, [null], protoBomb) },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const uuidArb = fc.uuid();
const guidNot = (...taken: string[]) => uuidArb.filter((g) => !taken.some((t) => t.toLowerCase() === g.toLowerCase()));

/** Noise: up to two values set or removed, at the input's known paths or at new keys (prototype names included). */
function noiseArb(paths: string[][]): fc.Arbitrary<Mutation[]> {
    const pathArb = fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...paths) },
        {
            weight: 1,
            arbitrary: fc
                .tuple(
                    fc.constantFrom<string[]>([], ...paths.filter((p) => p.length < 3)),
                    fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'prototype')),
                )
                .map(([prefix, key]) => [...prefix, key]),
        },
    );
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
        { weight: 4, arbitrary: fc.record({ path: pathArb, value: valueArb }) },
        { weight: 1, arbitrary: fc.record({ path: pathArb, remove: fc.constant(true as const) }) },
    );
    // Half the inputs without noise: one broken field at a time reaches further than several.
    return fc.oneof(fc.constant<Mutation[]>([]), fc.array(mutation, { minLength: 1, maxLength: 2 }));
}

// --- Events

const relevantTypes = ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'];
const isRelevantType = (t: unknown) =>
    typeof t === 'string' && relevantTypes.some((r) => r.toLowerCase() === t.trim().toLowerCase());
const irrelevantTypeArb: fc.Arbitrary<Json> = fc
    .oneof(
        fc.constantFrom<Json>(
            'Microsoft.Resources.ResourceWriteFailure',
            'Microsoft.Resources.ResourceWriteCancel',
            'Microsoft.Resources.ResourceActionSuccess',
            'Microsoft.Resources.ResourceDeleteFailure',
            'Microsoft.EventGrid.SubscriptionValidationEvent',
            'Microsoft.Storage.BlobCreated',
            'Microsoft.Resources.ResourceWriteSuccess\u0000',
            '',
            null,
            42,
            ['Microsoft.Resources.ResourceWriteSuccess'],
        ),
        valueArb,
    )
    .filter((t) => !isRelevantType(t));
const nonPecOperationArb: fc.Arbitrary<Json> = fc
    .oneof(
        fc.constantFrom<Json>(
            'Microsoft.DBforPostgreSQL/flexibleServers/write',
            'Microsoft.DBforMySQL/servers/firewallRules/write',
            'Microsoft.Network/privateEndpoints/write',
            'Microsoft.DBforMySQL/servers/privateEndpoint/write',
            '',
            null,
        ),
        valueArb,
    )
    .filter((o) => !(typeof o === 'string' && /privateEndpointConnection/i.test(o)));

const providers = [
    ...Object.values(kindInfo).map((k) => `${k.provider}/${k.type}`),
    'Microsoft.DBforMariaDB/servers',
    'Microsoft.Sql/servers',
    'Microsoft.DBforPostgreSQL/serverGroupsv2',
    'Microsoft.DBforPostgreSQL/flexibleServers/databases',
    'microsoft.dbforpostgresql/FLEXIBLESERVERS',
];
const childTypes = [
    'privateEndpointConnections',
    'privateEndpointConnectionProxies',
    'PRIVATEENDPOINTCONNECTIONS',
    'privateEndpointConnectionz',
    'firewallRules',
];

/** An edit of a resource id: a segment replaced, inserted or removed (by position), or text around the whole id. */
type IdEdit =
    | { kind: 'replace' | 'insert'; at: number; value: string }
    | { kind: 'remove'; at: number }
    | { kind: 'wrap'; prefix: string; suffix: string };

/** Resource ids: the world's, ones of servers that do not exist, and every segment open to injection. */
function resourceIdArb(world: FuzzWorld, base: 'real' | 'missing' | 'unwatched'): fc.Arbitrary<string> {
    const segmentArb = fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.constantFrom(...hostileStrings, 'a'.repeat(64), 'a'.repeat(91), 'pe.0b1c2d3e', 'x?api-version=1', 'a#b'),
    );
    const startArb =
        base === 'real'
            ? fc.constantFrom(
                  world.seeded.pecId,
                  `${world.seeded.serverId}/privateEndpointConnectionProxies/pe-x`,
                  world.bypassedPecId,
              )
            : base === 'unwatched'
              ? fc.constant(world.unwatchedDecoy.pecId)
              : fc
                    .record({
                        sub: fc.constantFrom(ids.ours, ids.second, ids.ours.toUpperCase()),
                        provider: fc.constantFrom(...providers),
                        server: fc.oneof(fc.constantFrom('gone-01', 'pg-prod'), segmentArb),
                        child: fc.constantFrom(...childTypes),
                        name: fc.oneof(fc.constant('pe-1.1234'), segmentArb),
                    })
                    .map(
                        (p) =>
                            `/subscriptions/${p.sub}/resourceGroups/rg-data/providers/${p.provider}/` +
                            `${p.server}/${p.child}/${p.name}`,
                    );
    const editArb: fc.Arbitrary<IdEdit> = fc.oneof(
        fc.record({ kind: fc.constantFrom('replace' as const, 'insert' as const), at: fc.nat(12), value: segmentArb }),
        fc.record({ kind: fc.constant('remove' as const), at: fc.nat(12) }),
        fc.record({
            kind: fc.constant('wrap' as const),
            prefix: fc.constantFrom('', ' ', '/', 'https://management.azure.com'),
            suffix: fc.constantFrom('', '/', '//', ' ', '/extra', '?x=1', '\n'),
        }),
    );
    const editsArb = fc.oneof(fc.constant<IdEdit[]>([]), fc.array(editArb, { minLength: 1, maxLength: 2 }));
    return fc.tuple(startArb, editsArb).map(([start, edits]) => {
        let segments = start.split('/');
        let prefix = '';
        let suffix = '';
        for (const edit of edits) {
            if (edit.kind === 'wrap') {
                prefix = edit.prefix;
                suffix = edit.suffix;
                continue;
            }
            const at = 1 + (edit.at % Math.max(1, segments.length - 1));
            segments =
                edit.kind === 'replace'
                    ? segments.map((s, i) => (i === at ? edit.value : s))
                    : edit.kind === 'insert'
                      ? [...segments.slice(0, at), edit.value, ...segments.slice(at)]
                      : segments.filter((_, i) => i !== at);
        }
        return `${prefix}${segments.join('/')}${suffix}`;
    });
}

const claimsArb = (ownClientId: string): fc.Arbitrary<Json> =>
    fc.oneof(
        {
            weight: 4,
            arbitrary: fc.constant<Json>({
                'http://schemas.microsoft.com/identity/claims/objectidentifier': people.dev.objectId,
                'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': people.dev.upn,
                name: people.dev.name,
                'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
                appid: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
            }),
        },
        {
            weight: 1,
            arbitrary: fc.constant<Json>({
                oid: people.mallory.objectId,
                tid: ids.foreignTenant,
                upn: 'x@evil.example',
            }),
        },
        { weight: 1, arbitrary: fc.constant<Json>({ appid: ownClientId }) },
        { weight: 1, arbitrary: fc.constantFrom<Json>({}, null, [], protoBomb, 'claims') },
        { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('oid', 'upn', 'name', 'tid', 'appid', 'azp'), valueArb) },
    );

const eventPaths = [
    ['id'],
    ['eventType'],
    ['type'],
    ['subject'],
    ['specversion'],
    ['topic'],
    ['source'],
    ['data'],
    ['data', 'operationName'],
    ['data', 'resourceUri'],
    ['data', 'subscriptionId'],
    ['data', 'tenantId'],
    ['data', 'status'],
    ['data', 'correlationId'],
    ['data', 'claims'],
    ['data', 'claims', 'appid'],
    ['data', 'claims', 'upn'],
    ['data', 'claims', 'tid'],
];

type EventBreaker =
    | { kind: 'type'; value: Json }
    | { kind: 'operation'; value: Json }
    | { kind: 'ownIdentity'; value: string }
    | { kind: 'serverItself' }
    | { kind: 'unwatched'; subscription: string }
    | { kind: 'noId'; value: Json };

/** Each one on its own keeps an event about the watched decoy (a pending PEC without a request) from opening one. */
function applyEventBreaker(world: FuzzWorld, event: JsonObject, b: EventBreaker): void {
    const data = event.data;
    switch (b.kind) {
        case 'type':
            // Both spellings: a body that parses as a CloudEvent is read by `type`, an Event Grid one by `eventType`.
            put(event, 'eventType', b.value);
            put(event, 'type', b.value);
            return;
        case 'noId':
            put(event, 'id', b.value);
            return;
        default:
            break;
    }
    // The rest live in `data`; an event whose data is not an object is invalid anyway.
    if (!isObject(data)) {
        return;
    }
    switch (b.kind) {
        case 'operation':
            put(data, 'operationName', b.value);
            return;
        case 'ownIdentity':
            put(data, 'claims', { ...asObject(data.claims), appid: b.value });
            return;
        case 'serverItself':
            put(data, 'resourceUri', world.watchedDecoy.serverId);
            return;
        case 'unwatched':
            put(data, 'resourceUri', world.watchedDecoy.pecId.replace(ids.ours, b.subscription));
            return;
    }
}

export function eventArb(world: FuzzWorld): fc.Arbitrary<EventInput> {
    const watched = [ids.ours, ids.second];
    const breakerArb: fc.Arbitrary<EventBreaker> = fc.oneof(
        fc.record({ kind: fc.constant('type' as const), value: irrelevantTypeArb }),
        fc.record({ kind: fc.constant('operation' as const), value: nonPecOperationArb }),
        fc.record({
            kind: fc.constant('ownIdentity' as const),
            value: fc.constantFrom(ids.client, ids.client.toUpperCase(), ` ${ids.client}\t`),
        }),
        fc.record({ kind: fc.constant('serverItself' as const) }),
        fc.record({ kind: fc.constant('unwatched' as const), subscription: guidNot(...watched) }),
        fc.record({ kind: fc.constant('noId' as const), value: fc.constantFrom<Json>(undefined, '', null, 42, {}) }),
    );
    const resource = fc.oneof(
        { weight: 3, arbitrary: resourceIdArb(world, 'real').map((uri) => ({ uri, decoy: false })) },
        { weight: 3, arbitrary: resourceIdArb(world, 'missing').map((uri) => ({ uri, decoy: false })) },
        { weight: 1, arbitrary: resourceIdArb(world, 'unwatched').map((uri) => ({ uri, decoy: false })) },
        // Untouched, so the breakers are what keeps it from being valid.
        { weight: 2, arbitrary: fc.constant({ uri: world.watchedDecoy.pecId, decoy: true }) },
        { weight: 1, arbitrary: stringArb.map((uri) => ({ uri, decoy: false })) },
    );
    const structured = fc
        .record({
            shape: fc.constantFrom('grid', 'grid', 'cloud', 'both'),
            id: fc.oneof(uuidArb, stringArb),
            correlationId: uuidArb,
            resource,
            subjectOnly: fc.boolean(),
            type: fc.oneof(
                { weight: 6, arbitrary: fc.constantFrom<Json>(...relevantTypes) },
                { weight: 1, arbitrary: fc.constant<Json>('microsoft.resources.resourcewritesuccess') },
                { weight: 1, arbitrary: irrelevantTypeArb },
            ),
            operation: fc.oneof(
                { weight: 3, arbitrary: fc.constant(undefined) },
                {
                    weight: 1,
                    arbitrary: fc.constantFrom<Json>(
                        'Microsoft.DBforMySQL/servers/privateEndpointConnectionProxies/validate/action',
                        'Microsoft.Network/privateEndpoints/write',
                    ),
                },
                { weight: 1, arbitrary: valueArb },
            ),
            claims: claimsArb(ids.client),
            topicSubscription: fc.constantFrom(ids.ours, ids.second, unwatchedSubscription),
            noise: noiseArb(eventPaths),
            breakers: fc.array(breakerArb, { minLength: 1, maxLength: 2 }),
        })
        .map((g) => {
            const { uri } = g.resource;
            const provider = /providers\/([^/]+\/[^/]+)/i.exec(uri)?.[1] ?? 'Microsoft.Unknown/things';
            const child = /\/(privateEndpointConnection\w*)\//i.exec(uri)?.[1] ?? 'privateEndpointConnections';
            const data: JsonObject = {
                operationName: g.operation ?? `${provider}/${child}/write`,
                ...(g.subjectOnly ? {} : { resourceUri: uri }),
                resourceProvider: provider.split('/')[0],
                subscriptionId: g.topicSubscription,
                tenantId: ids.tenant,
                status: 'Succeeded',
                correlationId: g.correlationId,
                claims: g.claims,
            };
            const topic = `/subscriptions/${g.topicSubscription}`;
            const grid = {
                id: g.id,
                topic,
                subject: uri,
                eventType: g.type,
                eventTime: '2026-11-21T22:00:00.000Z',
                dataVersion: '2',
                metadataVersion: '1',
                data,
            };
            const cloud = { specversion: '1.0', id: g.id, source: topic, subject: uri, type: g.type, data };
            const event: JsonObject = clone(
                g.shape === 'grid' ? grid : g.shape === 'cloud' ? cloud : { ...grid, ...cloud },
            );
            for (const m of g.noise) {
                mutate(event, m);
            }
            if (g.resource.decoy) {
                for (const b of g.breakers) {
                    applyEventBreaker(world, event, b);
                }
            }
            return { json: JSON.stringify(event) };
        });
    return fc.oneof(
        { weight: 12, arbitrary: structured },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ json: JSON.stringify(v) ?? 'null' })) },
        {
            weight: 1,
            arbitrary: fc
                .array(structured, { minLength: 1, maxLength: 2 })
                .map((events) => ({ json: `[${events.map((e) => e.json).join(',')}]` })),
        },
    );
}

// --- Activities

const activityPaths = [
    ['type'],
    ['name'],
    ['id'],
    ['channelId'],
    ['serviceUrl'],
    ['from'],
    ['from', 'id'],
    ['from', 'aadObjectId'],
    ['from', 'name'],
    ['recipient'],
    ['conversation'],
    ['conversation', 'id'],
    ['conversation', 'tenantId'],
    ['replyToId'],
    ['channelData'],
    ['channelData', 'tenant'],
    ['channelData', 'tenant', 'id'],
    ['value'],
    ['value', 'action'],
    ['value', 'action', 'type'],
    ['value', 'action', 'verb'],
    ['value', 'action', 'data'],
    ['value', 'action', 'data', 'requestId'],
    ['value', 'action', 'data', 'responseText'],
];

/** A breaker is a few mutations, applied in order. */
type ActivityBreaker = Mutation[];

/**
 * Each one on its own keeps a click with a genuine token from deciding, or from reaching the approver check (where a
 * signed-in non-approver is audited as refused, by design).
 */
function activityBreakerArb(world: FuzzWorld): fc.Arbitrary<ActivityBreaker> {
    const card = world.request.card;
    const conversationId = card?.conversationId ?? '';
    const activityId = card?.activityId ?? '';
    const set = (path: string[], value: fc.Arbitrary<Json>) => value.map((v): ActivityBreaker => [{ path, value: v }]);
    const notExactly = (...taken: Json[]) => valueArb.filter((v) => !taken.includes(v));
    return fc.oneof(
        set(
            ['type'],
            fc.oneof(fc.constantFrom<Json>('message', 'conversationUpdate', 'Invoke', 'event'), notExactly('invoke')),
        ),
        set(
            ['name'],
            fc.oneof(
                fc.constantFrom<Json>('composeExtension/query', 'adaptivecard/action'),
                notExactly('adaptiveCard/action'),
            ),
        ),
        set(
            ['value', 'action', 'verb'],
            fc.oneof(
                fc.constantFrom<Json>('refresh', 'Approve', 'APPROVE', 'approve ', 'decide'),
                notExactly('approve', 'reject'),
            ),
        ),
        set(
            ['value', 'action', 'type'],
            fc.oneof(fc.constantFrom<Json>('Action.Submit', 'action.execute'), notExactly('Action.Execute')),
        ),
        set(
            ['value', 'action', 'data', 'requestId'],
            fc
                .oneof(
                    fc.stringMatching(/^[A-Za-z0-9_-]{22}$/),
                    fc.constantFrom<Json>('../../r-x', "x' or PartitionKey ne ''", '', 'r'.repeat(129), 42, null),
                    notExactly(world.request.id),
                )
                .filter((v) => v !== world.request.id),
        ),
        set(
            ['channelData', 'tenant', 'id'],
            fc.oneof(guidNot(ids.tenant), notExactly(ids.tenant, ids.tenant.toUpperCase())),
        ),
        set(['conversation', 'id'], notExactly(conversationId)),
        set(
            ['replyToId'],
            fc
                .oneof(fc.constantFrom<Json>('1700000000000', activityId.toUpperCase()), notExactly(activityId))
                .filter((v) => v !== activityId),
        ),
        fc.constant<ActivityBreaker>([{ path: ['replyToId'], remove: true }]),
        set(['channelId'], notExactly('msteams')),
        set(['from', 'aadObjectId'], fc.constantFrom<Json>('not-a-guid', '', null, 42, `${people.alice.objectId}x`)),
        fc.constant<ActivityBreaker>([{ path: ['value', 'action', 'data', 'responseText'], value: huge(20_001) }]),
        // Valid but for the verb: a refresh shows the card and decides nothing, whoever asks.
        fc.constant<ActivityBreaker>([{ path: ['value', 'action', 'verb'], value: 'refresh' }]),
        // Valid but for the text, from Alice (an approver, not the requester): the card comes back with an inline
        // error and nothing is written. From anyone else it would be a refusal, audited by design.
        fc
            .oneof(
                fc.record({
                    verb: fc.constant('reject'),
                    text: fc.constantFrom<Json>(undefined, '', '   ', '\u0000\u202e'),
                }),
                fc.record({
                    verb: fc.constantFrom('approve', 'reject'),
                    text: fc.integer({ min: 501, max: 20_000 }).map(huge),
                }),
            )
            .map(({ verb, text }): ActivityBreaker => [
                { path: ['from', 'aadObjectId'], value: people.alice.objectId },
                { path: ['value', 'action', 'verb'], value: verb },
                text === undefined
                    ? { path: ['value', 'action', 'data', 'responseText'], remove: true }
                    : { path: ['value', 'action', 'data', 'responseText'], value: text },
            ]),
    );
}

export function activityArb(world: FuzzWorld): fc.Arbitrary<ActivityInput> {
    const who = fc.constantFrom(people.alice, people.bob, people.mallory, people.dev, {
        objectId: '5ca1ab1e-0000-4000-8000-00000000cafe',
        name: 'Stranger',
        upn: 'stranger@contoso.com',
    });
    // Mostly a genuine token, so that most activities get past the token check to the checks behind it.
    const authArb = fc.oneof(
        {
            weight: 8,
            arbitrary: fc.record({
                kind: fc.constant<TokenKind>('valid'),
                scheme: fc.constantFrom('Bearer', 'Bearer', 'bearer'),
                suffix: fc.constant(''),
            }),
        },
        {
            weight: 3,
            arbitrary: fc.record({
                kind: fc.constantFrom(...tokenKinds),
                scheme: fc.constantFrom('Bearer', 'bearer', 'Basic', '', 'Bearer  ', 'Token'),
                suffix: fc.constantFrom('', '', 'x', '.', ' extra', '=='),
            }),
        },
        { weight: 1, arbitrary: fc.constant({ kind: 'none' as const, scheme: '', suffix: '' }) },
        { weight: 1, arbitrary: stringArb.map((s) => ({ kind: 'garbage' as const, scheme: '', suffix: s })) },
    );
    const base = fc.record({
        who,
        verb: fc.constantFrom('approve', 'reject', 'refresh') as fc.Arbitrary<'approve' | 'reject' | 'refresh'>,
        text: fc.option(jsonStringArb, { nil: undefined }),
    });
    const bodyModeArb = fc.oneof(
        { weight: 14, arbitrary: fc.constant('json') },
        { weight: 3, arbitrary: fc.constantFrom('junk', 'text', 'huge', 'empty') },
    );
    return fc
        .record({
            auth: authArb,
            base,
            noise: noiseArb(activityPaths),
            breakers: fc.array(activityBreakerArb(world), { minLength: 1, maxLength: 2 }),
            mode: bodyModeArb,
            junk: fc.jsonValue({ maxDepth: 3 }),
            text: fc.string({ maxLength: 60 }),
            contentLength: contentLengthArb,
        })
        .map((g) => {
            const activity: JsonObject = clone(
                world.click({
                    verb: g.base.verb,
                    who: g.base.who,
                    ...(g.base.text === undefined ? {} : { text: g.base.text }),
                }),
            );
            for (const m of g.noise) {
                mutate(activity, m);
            }
            const valid = g.auth.kind === 'valid';
            if (valid) {
                for (const m of g.breakers.flat()) {
                    mutate(activity, m);
                }
            }
            const token = g.auth.kind === 'none' || g.auth.kind === 'garbage' ? '' : world.tokens[g.auth.kind];
            const authorization =
                g.auth.kind === 'none'
                    ? null
                    : headerSafe(
                          g.auth.kind === 'garbage' ? g.auth.suffix : `${g.auth.scheme} ${token}${g.auth.suffix}`,
                      );
            const body =
                g.mode === 'junk'
                    ? (JSON.stringify(g.junk) ?? '')
                    : g.mode === 'text'
                      ? g.text
                      : g.mode === 'empty'
                        ? ''
                        : g.mode === 'huge'
                          ? JSON.stringify({ ...activity, padding: huge(300_000) })
                          : JSON.stringify(activity);
            return {
                auth:
                    g.auth.kind === 'garbage' || g.auth.kind === 'none'
                        ? g.auth.kind
                        : `${g.auth.scheme} <${g.auth.kind}>${g.auth.suffix}`,
                authorization,
                body,
                ...lengthHeader(g.contentLength, body),
            };
        });
}

// --- Web forms

type FormPair = [string, string];
type FormBreaker =
    | { kind: 'linkToken'; value: string | undefined }
    | { kind: 'verb'; value: string | undefined }
    | { kind: 'extraKey'; key: string }
    | { kind: 'textTooLong' }
    | { kind: 'csrfLast'; value: string }
    | { kind: 'contentType'; value: string | undefined }
    | { kind: 'bodyTooLarge' }
    | { kind: 'trust'; value: Trust }
    | { kind: 'principal'; value: PrincipalKind | 'none' }
    | { kind: 'unknownId'; value: string }
    | { kind: 'textInvalid'; verb: 'approve' | 'reject'; text: string }
    | { kind: 'get' };

interface FormDraft {
    trust: Trust;
    principal: PrincipalKind | 'none' | { garbage: string };
    method: 'GET' | 'POST';
    id: string;
    query: FormPair[];
    contentType: string | undefined;
    contentLength: LengthChoice;
    pairs: FormPair[];
    rawBody: string | undefined;
}

const formKey = 'application/x-www-form-urlencoded';
const without = (pairs: FormPair[], key: string) => pairs.filter(([k]) => k !== key);

/**
 * Each one on its own keeps a POST that carries Alice's CSRF token (and maybe the link token) from deciding, or from
 * reaching the approver check with someone it would refuse (audited, by design).
 */
function applyFormBreaker(draft: FormDraft, b: FormBreaker): void {
    switch (b.kind) {
        case 'linkToken':
            draft.pairs = [
                ...without(draft.pairs, 'token'),
                ...(b.value === undefined ? [] : [['token', b.value] as FormPair]),
            ];
            return;
        case 'verb':
            draft.pairs = [
                ...without(draft.pairs, 'verb'),
                ...(b.value === undefined ? [] : [['verb', b.value] as FormPair]),
            ];
            return;
        case 'extraKey':
            draft.pairs = [...draft.pairs, [b.key, 'x']];
            return;
        case 'textTooLong':
            draft.pairs = [...without(draft.pairs, 'responseText'), ['responseText', huge(20_001)]];
            return;
        case 'csrfLast':
            draft.pairs = [...draft.pairs, ['csrf', b.value]];
            return;
        case 'contentType':
            draft.contentType = b.value;
            return;
        case 'bodyTooLarge':
            draft.pairs = [...draft.pairs, ['padding', huge(70_000)]];
            draft.rawBody = undefined;
            return;
        case 'trust':
            draft.trust = b.value;
            return;
        case 'principal':
            draft.principal = b.value;
            return;
        case 'unknownId':
            draft.id = b.value;
            return;
        case 'textInvalid':
            // Alice is an approver and not the requester: she gets the form back with an error, and nothing is written.
            draft.trust = 'platform';
            draft.principal = 'alice';
            draft.pairs = [
                ...without(without(draft.pairs, 'verb'), 'responseText'),
                ['verb', b.verb],
                ['responseText', b.text],
            ];
            return;
        case 'get':
            draft.method = 'GET';
            return;
    }
}

export function formArb(world: FuzzWorld): fc.Arbitrary<FormInput> {
    const urlSafe = fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.string({ unit: 'grapheme', maxLength: 12 }),
        fc.constantFrom(...hostileStrings),
    );
    const unknownIdArb = fc
        .oneof(
            fc.stringMatching(/^[A-Za-z0-9_-]{22,30}$/),
            urlSafe,
            fc.constantFrom(
                '..',
                '%2e%2e',
                world.request.id.toUpperCase(),
                `${world.request.id}x`,
                world.request.id.slice(1),
                'r'.repeat(65),
            ),
        )
        .filter((id) => id !== world.request.id);
    const csrfArb = fc.oneof(
        { weight: 4, arbitrary: fc.constant(world.csrf) },
        { weight: 1, arbitrary: fc.constant(`${world.csrf}x`) },
        { weight: 1, arbitrary: fc.constant(world.csrf.replace(/^\d{13}/, '9999999999999')) },
        { weight: 1, arbitrary: fc.constant(`0000000000000.${'A'.repeat(43)}`) },
        { weight: 1, arbitrary: urlSafe },
    );
    const tokenArb = fc.oneof(
        { weight: 4, arbitrary: fc.constant(world.linkToken) },
        { weight: 1, arbitrary: fc.constant(world.linkToken.toUpperCase()) },
        { weight: 1, arbitrary: urlSafe },
    );
    const pairArb = (key: string, value: fc.Arbitrary<string>) =>
        fc.option(
            value.map((v): FormPair => [key, v]),
            { nil: undefined, freq: 4 },
        );
    const breakerArb: fc.Arbitrary<FormBreaker> = fc.oneof(
        fc.record({
            kind: fc.constant('linkToken' as const),
            value: fc.option(
                urlSafe.filter((t) => t !== world.linkToken),
                { nil: undefined },
            ),
        }),
        fc.record({
            kind: fc.constant('verb' as const),
            value: fc.option(
                fc
                    .oneof(fc.constantFrom('Approve', 'approve ', 'refresh', ''), urlSafe)
                    .filter((v) => v !== 'approve' && v !== 'reject'),
                { nil: undefined },
            ),
        }),
        fc.record({
            kind: fc.constant('extraKey' as const),
            key: fc.constantFrom('extra', 'Csrf', 'verb ', 'responsetext', 'redirect'),
        }),
        fc.record({ kind: fc.constant('textTooLong' as const) }),
        fc.record({ kind: fc.constant('csrfLast' as const), value: fc.oneof(urlSafe, fc.constant(`${world.csrf}x`)) }),
        fc.record({
            kind: fc.constant('contentType' as const),
            value: fc.constantFrom(
                undefined,
                'application/json',
                'text/plain',
                'multipart/form-data; boundary=x',
                'application/x-www-form-urlencodedX',
            ),
        }),
        fc.record({ kind: fc.constant('bodyTooLarge' as const) }),
        fc.record({ kind: fc.constant('trust' as const), value: fc.constantFrom<Trust>('off', 'devInAzure') }),
        fc.record({
            kind: fc.constant('principal' as const),
            value: fc.constantFrom<PrincipalKind | 'none'>(
                'none',
                'bob',
                'mallory',
                'requester',
                'stranger',
                'aliceForeignTenant',
                'aliceNoTenant',
                'notBase64',
                'conflictingObjectIds',
                'otherProvider',
            ),
        }),
        fc.record({ kind: fc.constant('unknownId' as const), value: unknownIdArb }),
        fc.oneof(
            fc.record({
                kind: fc.constant('textInvalid' as const),
                verb: fc.constant('reject' as const),
                text: fc.constantFrom('', '   ', '\u0000\u202e\u200b', '\n\t'),
            }),
            fc.record({
                kind: fc.constant('textInvalid' as const),
                verb: fc.constantFrom('approve' as const, 'reject' as const),
                text: fc.integer({ min: 501, max: 3000 }).map(huge),
            }),
        ),
        fc.record({ kind: fc.constant('get' as const) }),
    );
    return fc
        .record({
            trust: fc.oneof(
                { weight: 6, arbitrary: fc.constant<Trust>('platform') },
                { weight: 1, arbitrary: fc.constantFrom<Trust>('dev', 'off', 'devInAzure') },
            ),
            // Mostly Alice, an approver, so that most requests get past sign-in to the checks behind it.
            principal: fc.oneof(
                { weight: 8, arbitrary: fc.constant<PrincipalKind | 'none'>('alice') },
                { weight: 4, arbitrary: fc.constantFrom<PrincipalKind | 'none'>(...principalKinds, 'none') },
                { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((garbage) => ({ garbage })) },
            ),
            method: fc.constantFrom<'GET' | 'POST'>('GET', 'POST', 'POST'),
            id: fc.oneof(
                { weight: 4, arbitrary: fc.constant(world.request.id) },
                { weight: 1, arbitrary: unknownIdArb },
            ),
            query: fc.oneof(
                { weight: 4, arbitrary: tokenArb.map((t): FormPair[] => [['token', t]]) },
                { weight: 1, arbitrary: fc.constant<FormPair[]>([]) },
                {
                    weight: 1,
                    arbitrary: fc.tuple(tokenArb, urlSafe).map(([a, b]): FormPair[] => [
                        ['token', b],
                        ['token', a],
                    ]),
                },
            ),
            contentType: fc.oneof(
                { weight: 8, arbitrary: fc.constant<string | undefined>(formKey) },
                {
                    weight: 2,
                    arbitrary: fc.constantFrom<string | undefined>(
                        `${formKey}; charset=utf-8`,
                        formKey.toUpperCase(),
                        undefined,
                        'application/json',
                        'text/html',
                        `multipart/form-data; boundary=----x`,
                    ),
                },
            ),
            contentLength: contentLengthArb,
            origin: fc.oneof(
                { weight: 8, arbitrary: fc.constant<string | undefined>(undefined) },
                {
                    weight: 1,
                    arbitrary: fc.constantFrom<string | undefined>(
                        '',
                        'null',
                        'https://attacker.example',
                        'http://pec-gate.example.net',
                    ),
                },
            ),
            fields: fc.tuple(
                pairArb('csrf', csrfArb),
                pairArb('token', tokenArb),
                pairArb(
                    'verb',
                    fc.oneof(
                        { weight: 4, arbitrary: fc.constantFrom('approve', 'reject') },
                        { weight: 1, arbitrary: urlSafe },
                    ),
                ),
                pairArb('responseText', fc.oneof(stringArb, fc.integer({ min: 400, max: 25_000 }).map(huge))),
            ),
            extra: fc.array(
                fc.tuple(
                    fc.oneof(
                        fc.constantFrom('__proto__', 'constructor', 'csrf', 'verb', 'hasOwnProperty'),
                        fc.string({ maxLength: 8 }),
                    ),
                    urlSafe,
                ),
                { maxLength: 2 },
            ),
            shuffle: fc.boolean(),
            bodyMode: fc.oneof(
                { weight: 5, arbitrary: fc.constant('form') },
                { weight: 1, arbitrary: fc.constantFrom('junk', 'json', 'huge') },
            ),
            junk: fc.string({ unit: 'binary', maxLength: 80 }),
            breakers: fc.array(breakerArb, { minLength: 1, maxLength: 2 }),
        })
        .map((g) => {
            const fields = g.fields.filter((p): p is FormPair => p !== undefined);
            const draft: FormDraft = {
                trust: g.trust,
                principal: g.principal,
                method: g.method,
                id: g.id,
                query: g.query,
                contentType: g.contentType,
                contentLength: g.contentLength,
                pairs: g.shuffle ? [...g.extra, ...fields] : [...fields, ...g.extra],
                rawBody:
                    g.bodyMode === 'junk'
                        ? g.junk
                        : g.bodyMode === 'json'
                          ? JSON.stringify(Object.fromEntries(fields))
                          : g.bodyMode === 'huge'
                            ? huge(70_000)
                            : undefined,
            };
            // Alice's CSRF token anywhere in a form that is posted: one of the breakers must stop it.
            if (
                draft.method === 'POST' &&
                draft.rawBody === undefined &&
                draft.pairs.some(([k, v]) => k === 'csrf' && v === world.csrf)
            ) {
                for (const b of g.breakers) {
                    applyFormBreaker(draft, b);
                }
            }
            const principal = draft.principal;
            const body =
                draft.method === 'POST' ? (draft.rawBody ?? new URLSearchParams(draft.pairs).toString()) : undefined;
            return {
                trust: draft.trust,
                principal: typeof principal === 'string' ? principal : 'garbage',
                ...(principal === 'none'
                    ? {}
                    : {
                          principalHeader:
                              typeof principal === 'string'
                                  ? world.principals[principal]
                                  : headerSafe(principal.garbage),
                      }),
                method: draft.method,
                id: draft.id,
                query: draft.query,
                ...(draft.contentType === undefined ? {} : { contentType: draft.contentType }),
                ...(body === undefined ? {} : { body, ...lengthHeader(draft.contentLength, body) }),
                ...(g.origin === undefined ? {} : { origin: g.origin }),
            };
        });
}

/**
 * Content-Length: mostly the body's own, as the host delivers it, sometimes absent (chunked), and now and then a claim
 * that is not the body's, which the handlers read before the body.
 */
type LengthChoice = 'exact' | 'absent' | string;
const contentLengthArb: fc.Arbitrary<LengthChoice> = fc.oneof(
    { weight: 6, arbitrary: fc.constant('exact') },
    { weight: 3, arbitrary: fc.constant('absent') },
    { weight: 1, arbitrary: fc.constantFrom('0', '-1', 'abc', '65537', '999999999', '1e9') },
);

function lengthHeader(choice: LengthChoice, body: string): { contentLength?: string } {
    if (choice === 'absent') {
        return {};
    }
    return { contentLength: choice === 'exact' ? String(Buffer.byteLength(body)) : choice };
}

/** Headers carry bytes: what no client could send (control characters, beyond Latin-1) is replaced. */
function headerSafe(value: string): string {
    return value.replace(/[^\t\x20-\x7e]/g, '?').trim();
}

// ---------------------------------------------------------------------------------------------------------------
// Running a case

interface Outcome {
    status?: number;
    /** What the handler made of it, for the coverage lines: an HTTP status, or why an event was dropped. */
    bucket: string;
}

const trustVariables = ['WEBSITE_AUTH_ENABLED', 'DEV_TRUST_CLIENT_PRINCIPAL', 'WEBSITE_SITE_NAME'] as const;

/** The App Service settings that decide whether `x-ms-client-principal` is believed, set for one call. */
async function withTrust<T>(trust: Trust, run: () => Promise<T>): Promise<T> {
    const saved = trustVariables.map((name) => [name, process.env[name]] as const);
    const values: Record<Trust, Partial<Record<(typeof trustVariables)[number], string>>> = {
        platform: { WEBSITE_AUTH_ENABLED: 'true' },
        off: { WEBSITE_AUTH_ENABLED: 'false' },
        dev: { DEV_TRUST_CLIENT_PRINCIPAL: 'true' },
        devInAzure: { DEV_TRUST_CLIENT_PRINCIPAL: 'true', WEBSITE_SITE_NAME: 'pec-gate-prod' },
    };
    for (const name of trustVariables) {
        const value = values[trust][name];
        if (value === undefined) {
            delete process.env[name];
        } else {
            process.env[name] = value;
        }
    }
    try {
        return await run();
    } finally {
        for (const [name, value] of saved) {
            if (value === undefined) {
                delete process.env[name];
            } else {
                process.env[name] = value;
            }
        }
    }
}

/** Runs one case through its registered handler, as the Functions host would call it. */
async function runCase(c: FuzzCase, context: InvocationContext & { logs: string[] }): Promise<Outcome> {
    switch (c.target) {
        case 'events': {
            const event = JSON.parse(c.input.json) as EventGridEvent;
            await pecEvents(event, context);
            const logs = context.logs.join('\n');
            return { bucket: eventBuckets.find(([, pattern]) => pattern.test(logs))?.[0] ?? 'other' };
        }
        case 'activities': {
            const { authorization, body, contentLength } = c.input;
            const headers: Record<string, string> = { 'content-type': 'application/json' };
            if (authorization !== null) {
                headers.authorization = authorization;
            }
            if (contentLength !== undefined) {
                headers['content-length'] = contentLength;
            }
            const request = new HttpRequest({
                url: 'https://pec-gate.example.net/api/messages',
                method: 'POST',
                headers,
                body: { string: body },
            });
            const response = await teamsMessages(request, context);
            const status = response.status ?? 200;
            const invoke = (response.jsonBody as { statusCode?: unknown } | undefined)?.statusCode;
            return { status, bucket: invoke === undefined ? String(status) : `${status}, invoke ${String(invoke)}` };
        }
        case 'forms': {
            const input = c.input;
            const headers: Record<string, string> = {};
            if (input.principalHeader !== undefined) {
                headers['x-ms-client-principal'] = input.principalHeader;
            }
            if (input.contentType !== undefined) {
                headers['content-type'] = input.contentType;
            }
            if (input.contentLength !== undefined) {
                headers['content-length'] = input.contentLength;
            }
            const origin = input.origin ?? 'https://pec-gate.example.net';
            if (origin !== '') {
                headers.origin = origin;
            }
            const url = new URL(`https://pec-gate.example.net/api/requests/${encodeURIComponent(input.id)}`);
            for (const [k, v] of input.query) {
                url.searchParams.append(k, v);
            }
            const request = new HttpRequest({
                url: url.toString(),
                method: input.method,
                headers,
                params: { id: input.id },
                ...(input.body === undefined ? {} : { body: { string: input.body } }),
            });
            const response = await withTrust(input.trust, () => decisionPage(request, context));
            const status = response.status ?? 200;
            return { status, bucket: `${input.method} ${status}` };
        }
    }
}

const handlerOf: Record<FuzzTarget, string> = {
    events: 'pecEvents',
    activities: 'teamsMessages',
    forms: 'decisionPage',
};
const lineBreak = /[\r\n\u2028\u2029]/;

// Where pecEvents left an event, from its log: the first that matches.
const eventBuckets: [string, RegExp][] = [
    ['invalid', /Dropped an invalid event/],
    ['irrelevant type', /is not a successful write or delete/],
    ['not a PEC operation', /is not about a private endpoint connection/],
    ['not a PEC id', /is not a PEC of/],
    ['server id', /is a server, not a private endpoint connection/],
    ['bad name', /names nothing ARM could hold/],
    ['unwatched', /is not watched/],
    ['own identity', /made by our own identity/],
    ['server not found', /was not found/],
    ['no pending PEC', /no pending PEC/],
    ['request exists', /pending, opened 0 request/],
];

// ---------------------------------------------------------------------------------------------------------------
// Detecting writes

interface Counters {
    arm: number;
    bot: number;
}

const isWrite = (method: string) => !['GET', 'HEAD'].includes(method.toUpperCase());

/** Where the in-memory emulators' request logs stand: cheap enough to look after every case. */
function counters(h: Harness): Counters {
    return { arm: h.arm.requests.length, bot: h.bot.requests.length };
}

/** The writes the emulators received since `before`: ARM and the Bot Connector, every method but a read. */
function emulatorWrites(h: Harness, before: Counters): string | undefined {
    const found = [
        ...h.arm.requests
            .slice(before.arm)
            .filter((r) => isWrite(r.method))
            .map((r) => `ARM ${r.method} ${r.path}`),
        ...h.bot.requests
            .slice(before.bot)
            .filter((r) => isWrite(r.method))
            .map((r) => `Bot Connector ${r.method} ${r.path}`),
    ];
    return found.length > 0 ? `wrote: ${found.slice(0, 3).join(', ')}` : undefined;
}

interface StorageEntry {
    version: string;
    what: string;
    at: number;
}

/** Azurite's state, entity by entity (with ETags, so an update counts as much as an insert) and queued messages. */
export class StorageWatch {
    private tables: { name: string; client: TableClient }[] | undefined;

    constructor(private readonly h: Harness) {}

    async snapshot(): Promise<Map<string, StorageEntry>> {
        // Made on first use, so that a bad connection string is reported by the run rather than thrown at its start.
        this.tables ??= [this.h.config.REQUESTS_TABLE, this.h.config.AUDIT_TABLE].map((name) => ({
            name,
            client: TableClient.fromConnectionString(this.h.env.AzureWebJobsStorage ?? '', name, {
                allowInsecureConnection: true,
            }),
        }));
        const state = new Map<string, StorageEntry>();
        for (const { name, client } of this.tables) {
            try {
                for await (const e of client.listEntities<{ status?: string; action?: string }>()) {
                    state.set(`${name}/${e.partitionKey}/${e.rowKey}`, {
                        version: e.etag,
                        what: e.action ?? e.status ?? 'entity',
                        at: Date.parse(e.timestamp ?? '') || 0,
                    });
                }
            } catch (err) {
                // A table that does not exist yet holds nothing; any other failure must not pass for "no writes".
                if ((err as { statusCode?: number }).statusCode !== 404) {
                    throw err;
                }
            }
        }
        if (await this.h.queue.exists()) {
            const { peekedMessageItems } = await this.h.queue.peekMessages({ numberOfMessages: 32 });
            for (const m of peekedMessageItems) {
                state.set(`queue/${m.messageId}`, { version: '1', what: 'message', at: m.insertedOn.getTime() });
            }
        }
        return state;
    }

    static diff(
        before: Map<string, StorageEntry>,
        after: Map<string, StorageEntry>,
    ): (StorageEntry & { key: string })[] {
        const changed: (StorageEntry & { key: string })[] = [];
        for (const [key, entry] of after) {
            if (before.get(key)?.version !== entry.version) {
                changed.push({ key, ...entry });
            }
        }
        for (const [key, entry] of before) {
            if (!after.has(key)) {
                changed.push({ key, ...entry, what: `${entry.what} deleted` });
            }
        }
        return changed;
    }
}

function describeStorage(changes: (StorageEntry & { key: string })[]): string {
    const shown = changes.slice(0, 3).map((c) => `${c.key.split('/')[0]}:${c.what}`);
    return `wrote to storage: ${shown.join(', ')}${changes.length > 3 ? ` (+${changes.length - 3})` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The run

interface Executed {
    target: FuzzTarget;
    index: number;
    case: FuzzCase;
    bucket: string;
    /** A log line of the case carries a line break from the input (one log line could pass for two). */
    forgedLog: boolean;
    /** The target's seed under runFuzz: with the index (fast-check's path), it replays the case. */
    seed?: number;
    started: number;
    ended: number;
    crash?: string;
    /** Where its description is in the report's examples, if it made it there. */
    example?: number;
}

/** Runs cases one after another, judges each, and looks at Azurite every `storageCheckEvery` cases. */
export class FuzzJudge {
    readonly report: FuzzReport = {
        cases: 0,
        crashes: 0,
        byTarget: {
            events: { cases: 0, crashes: 0 },
            activities: { cases: 0, crashes: 0 },
            forms: { cases: 0, crashes: 0 },
        },
        examples: [],
    };
    private readonly storage: StorageWatch;
    private baseline: Map<string, StorageEntry> | undefined;
    private batch: Executed[] = [];
    /** How many cases of each target ended where: evidence that the generators reach past the first check. */
    readonly coverage: Record<FuzzTarget, Map<string, number>> = {
        events: new Map(),
        activities: new Map(),
        forms: new Map(),
    };
    /**
     * Cases whose log carries a raw line break from the input. Not a crash by the issue's definition, so only counted
     * and logged: the logs take event fields and form keys as they come.
     */
    readonly forgedLogs: Record<FuzzTarget, number> = { events: 0, activities: 0, forms: 0 };
    /** Crashes waiting to be shrunk into their examples: only throws and 5xx, which do not depend on storage state. */
    readonly crashed: Executed[] = [];

    constructor(
        private readonly h: Harness,
        private readonly options: { storageCheckEvery?: number; log?: (line: string) => void } = {},
    ) {
        this.storage = new StorageWatch(h);
    }

    /** Runs and judges one case. A handler's failure is judged, not thrown; only a failed look at Azurite throws. */
    async run(target: FuzzTarget, index: number, c: FuzzCase, seed?: number): Promise<Executed> {
        this.baseline ??= await this.storage.snapshot();
        const done = { ...(await this.execute(target, index, c)), ...(seed === undefined ? {} : { seed }) };
        this.count(done);
        this.batch.push(done);
        if (this.batch.length >= (this.options.storageCheckEvery ?? 200)) {
            await this.checkStorage();
        }
        return done;
    }

    /** Looks at Azurite for what the cases since the last look wrote, and traces any write to its case. */
    async checkStorage(): Promise<void> {
        const batch = this.batch;
        this.batch = [];
        if (batch.length === 0 || !this.baseline) {
            return;
        }
        const after = await this.storage.snapshot();
        const changes = StorageWatch.diff(this.baseline, after);
        this.baseline = after;
        if (changes.length === 0) {
            return;
        }
        if (batch.length === 1) {
            this.blame(batch[0]!, describeStorage(changes));
            return;
        }
        // Replaying the batch one case at a time names the case when its write repeats (a refusal audited again)...
        let named = false;
        for (const executed of batch) {
            const before = await this.storage.snapshot();
            await this.execute(executed.target, executed.index, executed.case);
            const replayed = await this.storage.snapshot();
            const again = StorageWatch.diff(before, replayed);
            if (again.length > 0) {
                this.blame(executed, `${describeStorage(again)} (found by replay)`);
                named = true;
            }
        }
        this.baseline = await this.storage.snapshot();
        if (named) {
            return;
        }
        // ...else Azurite's timestamps point at the case that was running when the entity was written.
        for (const change of changes) {
            const suspect =
                batch.find((e) => change.at >= e.started - 5 && change.at <= e.ended + 5) ?? batch[batch.length - 1]!;
            this.blame(
                suspect,
                `${describeStorage([change])} (by timestamp, among cases ${batch[0]!.index} to ${batch.at(-1)!.index})`,
            );
        }
    }

    private async execute(target: FuzzTarget, index: number, c: FuzzCase): Promise<Executed> {
        const before = counters(this.h);
        const started = Date.now();
        let crash: string | undefined;
        let bucket = 'threw';
        const context = testContext(handlerOf[target]);
        try {
            const outcome = await runCase(c, context);
            bucket = outcome.bucket;
            if (outcome.status !== undefined && outcome.status >= 500) {
                crash = `answered ${outcome.status}`;
            }
        } catch (err) {
            const e = ensureErrorType(err);
            crash = `threw ${e.name}: ${shorten(e.message, 160)}`;
        }
        const wrote = emulatorWrites(this.h, before);
        if (wrote) {
            crash = crash ? `${crash}; ${wrote}` : wrote;
        }
        const forgedLog = context.logs.some((line) => lineBreak.test(line));
        return {
            target,
            index,
            case: c,
            bucket,
            forgedLog,
            started,
            ended: Date.now(),
            ...(crash ? { crash } : {}),
        };
    }

    private count(e: Executed): void {
        const coverage = this.coverage[e.target];
        coverage.set(e.bucket, (coverage.get(e.bucket) ?? 0) + 1);
        if (e.forgedLog) {
            this.forgedLogs[e.target] += 1;
        }
        this.report.cases += 1;
        this.report.byTarget[e.target].cases += 1;
        if (e.crash) {
            this.report.crashes += 1;
            this.report.byTarget[e.target].crashes += 1;
            this.crashed.push(e);
            this.example(e, e.crash);
        }
    }

    /** A write found in storage after the fact: a crash of its own unless the case had already crashed. */
    private blame(e: Executed, why: string): void {
        if (e.crash) {
            e.crash += `; ${why}`;
            if (e.example !== undefined) {
                this.report.examples[e.example] += `; ${why}`;
            }
            return;
        }
        e.crash = why;
        this.report.crashes += 1;
        this.report.byTarget[e.target].crashes += 1;
        this.example(e, why);
    }

    private example(e: Executed, why: string): void {
        const text = `${label(e)}: ${why} | ${describeCase(e.case)}`;
        this.options.log?.(`CRASH ${text}`);
        if (this.report.examples.length < maxExamples) {
            e.example = this.report.examples.push(text) - 1;
        }
    }

    /** Replaces an example with the smallest input fast-check finds that still crashes the same way (throw or 5xx). */
    async shrink(e: Executed, arb: fc.Arbitrary<FuzzCase>): Promise<void> {
        const kind = e.crash?.startsWith('threw') ? 'threw' : e.crash?.startsWith('answered') ? 'answered' : undefined;
        if (!kind || e.seed === undefined || e.example === undefined) {
            return;
        }
        let budget = shrinkBudget;
        let smallest: { c: FuzzCase; crash: string } | undefined;
        const result = await fc.check(
            fc.asyncProperty(arb, async (c) => {
                if (budget-- <= 0) {
                    return true;
                }
                const done = await this.execute(e.target, e.index, c);
                const crashes = done.crash?.startsWith(kind) ?? false;
                if (crashes) {
                    smallest = { c, crash: done.crash ?? '' };
                }
                return !crashes;
            }),
            { seed: e.seed, path: String(e.index), numRuns: e.index + 1 },
        );
        if (result.failed && smallest && result.numShrinks > 0) {
            this.report.examples[e.example] += ` || shrunk: ${smallest.crash} | ${describeCase(smallest.c)}`;
        }
    }
}

function label(e: Executed): string {
    return e.seed === undefined
        ? `${e.target} #${e.index}`
        : `${e.target} #${e.index} (seed ${e.seed}, path "${e.index}")`;
}

function shorten(text: string, max: number): string {
    const escaped = JSON.stringify(text).slice(1, -1);
    return escaped.length <= max ? escaped : `${escaped.slice(0, max)}…(+${escaped.length - max})`;
}

export function describeCase(c: FuzzCase): string {
    const parts: (string | false)[] = [];
    switch (c.target) {
        case 'events':
            parts.push(`event ${summariseEvent(c.input.json)}`);
            break;
        case 'activities':
            parts.push(
                `auth=${c.input.auth}`,
                c.input.contentLength !== undefined && `content-length=${c.input.contentLength}`,
                `body=${shorten(c.input.body, 240)}`,
            );
            break;
        case 'forms': {
            const i = c.input;
            parts.push(
                i.method,
                `trust=${i.trust}`,
                `principal=${i.principal}`,
                `id=${shorten(i.id, 60)}`,
                i.query.length > 0 && `query=${shorten(new URLSearchParams(i.query).toString(), 80)}`,
                i.contentType !== undefined && `type=${i.contentType}`,
                i.contentLength !== undefined && `length=${i.contentLength}`,
                i.body !== undefined && `body=${shorten(i.body, 200)}`,
            );
            break;
        }
    }
    return parts.filter(Boolean).join(' ');
}

/**
 * An event by the fields that decide its fate (the rest is boilerplate that would crowd them out of a short line), and
 * its length; anything that is not an event-shaped object, as it is.
 */
function summariseEvent(json: string): string {
    const event: unknown = JSON.parse(json);
    if (!isObject(event)) {
        return shorten(json, 240);
    }
    const data = asObject(event.data);
    const picked: JsonObject = {};
    for (const [key, value] of [
        ['id', event.id],
        ['specversion', event.specversion],
        ['eventType', event.eventType],
        ['type', event.type],
        ['subject', data.resourceUri === undefined ? event.subject : undefined],
        ['data', isObject(event.data) ? undefined : event.data],
        ['operationName', data.operationName],
        ['resourceUri', data.resourceUri],
        ['claims', isObject(data.claims) ? Object.keys(data.claims).join(',') : data.claims],
    ] as const) {
        if (value !== undefined) {
            put(picked, key, value);
        }
    }
    return `${shorten(JSON.stringify(picked), 300)} (${json.length} chars)`;
}

/** The arbitraries of each target, as cases. */
export function caseArbs(world: FuzzWorld): Record<FuzzTarget, fc.Arbitrary<FuzzCase>> {
    return {
        events: eventArb(world).map((input): FuzzCase => ({ target: 'events', input })),
        activities: activityArb(world).map((input): FuzzCase => ({ target: 'activities', input })),
        forms: formArb(world).map((input): FuzzCase => ({ target: 'forms', input })),
    };
}

/**
 * Runs `options.cases` generated cases, split evenly across the three targets, each target with its own seed derived
 * from `options.seed` (so a target's cases do not change when another's generator does). Never throws: a failure of
 * the fuzzer itself is reported as a crash.
 */
export async function runFuzz(h: Harness, options: FuzzOptions): Promise<FuzzReport> {
    const judge = new FuzzJudge(h, options);
    try {
        const world = options.world ?? (await prepareFuzzWorld(h));
        const arbs = caseArbs(world);
        for (const [i, target] of targets.entries()) {
            const numRuns = Math.floor(options.cases / targets.length) + (i < options.cases % targets.length ? 1 : 0);
            if (numRuns === 0) {
                continue;
            }
            const seed = targetSeed(options.seed, target);
            let index = 0;
            const result = await fc.check(
                fc.asyncProperty(arbs[target], async (c) => {
                    await judge.run(target, index++, c, seed);
                    return true;
                }),
                { seed, numRuns },
            );
            await judge.checkStorage();
            if (result.failed) {
                throw ensureErrorType(result.errorInstance ?? 'fast-check stopped');
            }
            const { cases, crashes } = judge.report.byTarget[target];
            const where = [...judge.coverage[target]]
                .sort((a, b) => b[1] - a[1])
                .map(([bucket, n]) => `${bucket}: ${n}`);
            options.log?.(
                `${target}: ${cases} cases, ${crashes} crashes (seed ${seed}); ${where.join(', ')}; ` +
                    `log lines with a line break from the input: ${judge.forgedLogs[target]}`,
            );
        }
        for (const e of judge.crashed.slice(0, 3)) {
            await judge.shrink(e, arbs[e.target]);
        }
    } catch (err) {
        const e = ensureErrorType(err);
        judge.report.crashes += 1;
        judge.report.examples.push(`the fuzzer itself failed: ${e.name}: ${shorten(e.message, 300)}`);
    }
    return judge.report;
}

/** The seed one target's cases are drawn with. */
export function targetSeed(seed: number, target: FuzzTarget): number {
    return (seed * 31 + targets.indexOf(target) * 1_000_003) | 0;
}
