import type * as http from 'node:http';
import { FaultPlan, bearerAudience, sendJson, serveWithFault, startServer, type RunningServer } from './server';
import {
    readExample,
    renderPec,
    shapeOf,
    specSources,
    type LocationStatus,
    type PecState,
    type SpecShape,
} from './armKinds';

/**
 * An ARM emulator for Private Endpoint Connections on the four database server kinds and, in the shapes of their
 * official examples (./armKinds.ts), on every other resource type in test/fixtures/armSpecs/sources.json, following the REST contracts in
 * /work/shared/azure-facts.md: ARM error bodies, api-version checks, paging with nextLink, and the 202 +
 * Azure-AsyncOperation/Location long-running-operation pattern. Operations advance per poll rather than per clock tick,
 * so tests are deterministic; a GET of the PEC itself also counts as a poll, because clients in the az CLI style poll
 * the resource's provisioningState instead of the operation URL.
 */

/** An ARM namespace (Microsoft.DBforPostgreSQL, Microsoft.Sql, ...) and a resource type of it. */
export type DbProvider = string;
export type ServerKind = string;
export type PecStatus = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';

export interface AddServerInput {
    subscriptionId: string;
    resourceGroup: string;
    provider: DbProvider;
    type: ServerKind;
    name: string;
    location?: string;
    publicNetworkAccess?: 'Enabled' | 'Disabled';
    tags?: Record<string, string>;
}

export interface AddPecInput {
    name: string;
    privateEndpointId: string;
    status?: PecStatus;
    description?: string;
}

export interface ArmRequest {
    method: string;
    path: string;
    apiVersion?: string;
    body?: unknown;
}

export interface ArmOperation {
    id: string;
    pecId: string;
    method: string;
    status: 'InProgress' | 'Succeeded' | 'Failed';
}

/** A PUT's connection state written to a PEC (when its operation succeeded, or at once without async headers). */
export interface ArmCommit {
    pecId: string;
    from: PecStatus;
    to: PecStatus;
    description: string;
}

export interface ArmEmulatorOptions {
    expectedAudience?: string;
    asyncPolls?: number;
    retryAfterSeconds?: number;
    pageSize?: number;
    /** Added before every answer (off by default): a round trip to a real region costs tens of milliseconds. */
    latencyMs?: number;
    /**
     * ARM's throttling of reads (off by default), as "Understand how Azure Resource Manager throttles requests"
     * documents it since 2024: a token bucket per subscription (and principal; one principal here) of 250 tokens refilled
     * at 25 a second. Every GET under a subscription takes a token; its answer says how many remain in
     * `x-ms-ratelimit-remaining-subscription-reads`. With the bucket empty ARM answers 429
     * `SubscriptionRequestsThrottled` with `Retry-After` in seconds, and a read sent before that time is not
     * processed either: it gets a new Retry-After (counted in `throttle.early`).
     */
    readThrottle?: { bucket: number; refillPerSecond: number };
}

/** What the read throttle did: 429s answered, and reads that came back before their Retry-After had elapsed. */
export interface ThrottleCounts {
    throttled: number;
    early: number;
    /** Reads answered (not throttled), per subscription (lower case). */
    reads: Map<string, number>;
}

interface ServerRecord extends Required<AddServerInput> {
    id: string;
    pecs: Map<string, PecRecord>;
}

interface PecRecord {
    id: string;
    name: string;
    server: ServerRecord;
    privateEndpointId: string;
    status: PecStatus;
    description: string;
    provisioningState: string;
}

interface OperationRecord extends ArmOperation {
    pec: PecRecord;
    polls: number;
    /** The connection state a PUT commits on success; absent for a DELETE. */
    target?: { status: PecStatus; description: string };
    apiVersion: string;
    startTime: string;
    endTime?: string;
    error?: ArmError;
    /**
     * The status resource handed out as `Azure-AsyncOperation` for a kind shaped by its examples: it answers with the
     * operation's status, and an unfinished one points back at itself (a provider hands out only the status URLs of
     * its own documented operations).
     */
    statusAt?: LocationStatus;
}

const API_VERSIONS: Record<string, readonly string[]> = {
    'microsoft.dbforpostgresql/servers': ['2018-06-01'],
    'microsoft.dbformysql/servers': ['2018-06-01'],
    'microsoft.dbforpostgresql/flexibleservers': ['2024-08-01', '2025-08-01', '2025-06-01-preview'],
    'microsoft.dbformysql/flexibleservers': ['2022-09-01', '2023-06-30', '2024-12-30'],
};
// @azure/arm-postgresql 6.1.0 and @azure/arm-mysql 5.1.0 read and list the single servers themselves with 2017-12-01.
const SINGLE_SERVER_GET_VERSIONS = ['2017-12-01', '2018-06-01'];

const POLL_PATH =
    /^\/subscriptions\/[^/]+\/providers\/([^/]+)\/locations\/[^/]+\/(azureAsyncOperation|operationResults|privateEndpointConnectionAzureAsyncOperation|operationsStatus)\/([^/]+)$/i;
const SUBSCRIPTION_LIST_PATH = /^\/subscriptions\/([^/]+)\/providers\/([^/]+)\/([^/]+)$/i;
const RESOURCE_PATH =
    /^(\/subscriptions\/[^/]+\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+))(\/privateEndpointConnections(?:\/([^/]+))?)?(?:\/operationStatuses\/([^/]+))?$/i;

const DB_PROVIDERS = new Set(['microsoft.dbforpostgresql', 'microsoft.dbformysql']);
const isDatabase = (rp: string) => DB_PROVIDERS.has(rp.toLowerCase());

/** The other resource types, each in the shape of its official examples. */
const SPEC_SHAPES = new Map<string, SpecShape>(
    specSources.map((source) => [`${source.provider}/${source.type}`.toLowerCase(), shapeOf(source)]),
);
const shapeOfType = (rp: string, type: string) => SPEC_SHAPES.get(`${rp}/${type}`.toLowerCase());

/** The api-versions of a resource type, or undefined for a type this emulator does not serve. */
function versionsOf(rp: string, type: string): readonly string[] | undefined {
    return API_VERSIONS[`${rp}/${type}`.toLowerCase()] ?? shapeOfType(rp, type)?.source.apiVersions;
}

export function armErrorBody(_status: number, code: string, message = code) {
    return { error: { code, message } };
}

class ArmError extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        message: string,
    ) {
        super(message);
    }
}

const notFound = (what: string, rg: string) =>
    new ArmError(404, 'ResourceNotFound', `The Resource '${what}' under resource group '${rg}' was not found.`);
const lower = (s: string) => s.toLowerCase();

export class ArmEmulator {
    readonly faults = new FaultPlan();
    readonly requests: ArmRequest[] = [];
    /** Every connection state a PUT wrote, in order: a repeated PUT shows as a commit that changed nothing. */
    readonly commits: ArmCommit[] = [];
    private readonly servers = new Map<string, ServerRecord>();
    /** Subscription id (lower case) to its home tenant, for the unauthenticated subscription lookup. */
    private readonly homeTenants = new Map<string, string>();
    private readonly ops = new Map<string, OperationRecord>();
    readonly throttle: ThrottleCounts = { throttled: 0, early: 0, reads: new Map() };
    private readonly buckets = new Map<string, { tokens: number; at: number; blockedUntil: number }>();
    private server!: RunningServer;
    private stuck = false;
    private failing = false;
    private noAsyncHeaders = false;
    private atOnce = false;

    private constructor(
        private readonly options: ArmEmulatorOptions & Required<Omit<ArmEmulatorOptions, 'expectedAudience'>>,
    ) {}

    static async start(options: ArmEmulatorOptions = {}): Promise<ArmEmulator> {
        const emulator = new ArmEmulator({
            asyncPolls: 1,
            retryAfterSeconds: 0,
            pageSize: 50,
            latencyMs: 0,
            readThrottle: { bucket: Number.POSITIVE_INFINITY, refillPerSecond: 0 },
            ...options,
        });
        emulator.server = await startServer((req, res, body) => emulator.handle(req, res, body), { https: true });
        return emulator;
    }

    get url(): string {
        return this.server.url;
    }

    get operations(): ArmOperation[] {
        return [...this.ops.values()].map(({ id, pecId, method, status }) => ({ id, pecId, method, status }));
    }

    close(): Promise<void> {
        return this.server.close();
    }

    addServer(input: AddServerInput): string {
        const { subscriptionId: sub, resourceGroup: rg, provider, type, name } = input;
        const id = `/subscriptions/${sub}/resourceGroups/${rg}/providers/${provider}/${type}/${name}`;
        const defaults = { location: 'westeurope', publicNetworkAccess: 'Disabled' as const, tags: {} };
        this.servers.set(lower(id), { ...defaults, ...input, id, pecs: new Map() });
        return id;
    }

    addPec(serverId: string, input: AddPecInput): string {
        const server = this.servers.get(lower(serverId));
        if (!server) {
            throw new Error(`addPec: no server ${serverId}`);
        }
        const id = `${server.id}/privateEndpointConnections/${input.name}`;
        const { name, privateEndpointId, status = 'Pending', description = '' } = input;
        const pec = { id, name, server, privateEndpointId, status, description, provisioningState: settled(server) };
        if (!isDatabase(server.provider) && !shapeOfType(server.provider, server.type)) {
            throw new Error(`addPec: no official examples for ${server.provider}/${server.type}`);
        }
        server.pecs.set(lower(name), pec);
        return id;
    }

    getPec(pecId: string): unknown {
        const pec = this.findPec(pecId);
        return pec && pecBody(pec);
    }

    /** The home tenant ARM names when asked about this subscription without a token. */
    setSubscriptionTenant(subscriptionId: string, tenantId: string): void {
        this.homeTenants.set(lower(subscriptionId), tenantId);
    }

    /** Changes a PEC out of band, like a click in the portal. */
    setPecStatus(pecId: string, status: PecStatus, description: string): void {
        const pec = this.findPec(pecId);
        if (!pec) {
            throw new Error(`setPecStatus: no PEC ${pecId}`);
        }
        Object.assign(pec, { status, description, provisioningState: settled(pec.server) });
    }

    /** Removes a server with its PECs, as a deletion of the server would. */
    removeServer(serverId: string): void {
        this.servers.delete(lower(serverId));
    }

    removePec(pecId: string): void {
        const pec = this.findPec(pecId);
        pec?.server.pecs.delete(lower(pec.name));
    }

    /** Keeps every async operation InProgress, to exercise deadlines. Polls made meanwhile do not count. */
    stickLro(on: boolean): void {
        this.stuck = on;
    }

    /** Ends async operations in Failed (provisioningState Failed) without committing the change. */
    failLro(on: boolean): void {
        this.failing = on;
    }

    /**
     * Reproduces the service behaviour behind the SDK polling bug: a PUT/PATCH answers 200 with the requested state but
     * a provisioningState that never becomes final, and no async headers.
     */
    putWithoutAsyncHeaders(on: boolean): void {
        this.noAsyncHeaders = on;
    }

    /**
     * Answers a PUT with 200 and the connection already settled (`provisioningState` Ready on single servers,
     * Succeeded on flexible ones), committed at once: what the official examples of every server kind show.
     */
    putAnswersAtOnce(on: boolean): void {
        this.atOnce = on;
    }

    private findPec(pecId: string): PecRecord | undefined {
        const m = /^(.*)\/privateEndpointConnections\/([^/]+)$/i.exec(pecId);
        return m ? this.servers.get(lower(m[1] ?? ''))?.pecs.get(lower(m[2] ?? '')) : undefined;
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse, rawBody: string): Promise<void> {
        const url = new URL(req.url ?? '/', this.url);
        const method = req.method ?? 'GET';
        let body: unknown = undefined;
        try {
            body = rawBody ? JSON.parse(rawBody) : undefined;
        } catch {
            body = rawBody;
        }
        const apiVersion = url.searchParams.get('api-version') ?? undefined;
        this.requests.push({ method, path: url.pathname, apiVersion, body });
        if (this.options.latencyMs > 0) {
            await new Promise((resolve) => setTimeout(resolve, this.options.latencyMs));
        }
        if (this.throttled(method, url, res)) {
            return;
        }
        await serveWithFault(this.faults.take(method, url.pathname), req, res, armErrorBody, (out) => {
            try {
                if (this.homeTenantAnswer(method, url, req.headers.authorization, out)) {
                    return;
                }
                this.authorize(req.headers.authorization);
                this.route(method, url, body, out);
            } catch (err) {
                if (!(err instanceof ArmError)) {
                    throw err;
                }
                sendJson(out, err.status, armErrorBody(err.status, err.code, err.message));
            }
        });
    }

    /**
     * The read token bucket of the request's subscription (see `readThrottle`): true when it answered 429. An answered
     * read carries the tokens left in `x-ms-ratelimit-remaining-subscription-reads`.
     */
    private throttled(method: string, url: URL, res: http.ServerResponse): boolean {
        const { bucket, refillPerSecond } = this.options.readThrottle;
        const sub = /^\/subscriptions\/([^/]+)/i.exec(url.pathname)?.[1];
        if (method !== 'GET' || !sub || !Number.isFinite(bucket)) {
            return false;
        }
        const key = lower(decodeURIComponent(sub));
        const now = Date.now();
        const state = this.buckets.get(key) ?? { tokens: bucket, at: now, blockedUntil: 0 };
        state.tokens = Math.min(bucket, state.tokens + ((now - state.at) / 1000) * refillPerSecond);
        state.at = now;
        this.buckets.set(key, state);
        const early = now < state.blockedUntil;
        if (!early && state.tokens >= 1) {
            state.tokens -= 1;
            this.throttle.reads.set(key, (this.throttle.reads.get(key) ?? 0) + 1);
            res.setHeader('x-ms-ratelimit-remaining-subscription-reads', String(Math.floor(state.tokens)));
            return false;
        }
        this.throttle.throttled += 1;
        if (early) {
            this.throttle.early += 1;
        }
        const seconds = Math.max(1, Math.ceil((1 - state.tokens) / Math.max(refillPerSecond, 1e-9)));
        state.blockedUntil = Math.max(state.blockedUntil, now + seconds * 1000);
        sendJson(
            res,
            429,
            armErrorBody(
                429,
                'SubscriptionRequestsThrottled',
                `Number of 'read' requests for subscription '${sub}' ` +
                    `exceeded. Please try again after '${seconds}' seconds after additional tokens are available. ` +
                    'Refer to https://aka.ms/arm-throttling for additional information.',
            ),
            { 'retry-after': String(seconds), 'x-ms-ratelimit-remaining-subscription-reads': '0' },
        );
        return true;
    }

    /**
     * ARM's answer to `GET /subscriptions/{id}` without a token: 401, naming the subscription's home tenant in
     * `WWW-Authenticate` (the documented way to discover a subscription's tenant). A subscription it does not know
     * gets 404 SubscriptionNotFound, without a tenant.
     */
    private homeTenantAnswer(method: string, url: URL, header: string | undefined, res: http.ServerResponse): boolean {
        const m = /^\/subscriptions\/([^/]+)\/?$/i.exec(decodeURIComponent(url.pathname));
        if (!m || method !== 'GET' || header) {
            return false;
        }
        const tenant = this.homeTenants.get(lower(m[1] ?? ''));
        if (!tenant) {
            throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${m[1]}' could not be found.`);
        }
        const body = armErrorBody(
            401,
            'AuthenticationFailed',
            "Authentication failed. The 'Authorization' header is missing.",
        );
        sendJson(res, 401, body, {
            'www-authenticate':
                `Bearer authorization_uri="https://login.windows.net/${tenant}", error="invalid_token", ` +
                `error_description="The authentication failed because of missing 'Authorization' header."`,
        });
        return true;
    }

    private authorize(header: string | undefined): void {
        if (!/^Bearer\s+\S+/i.test(header ?? '')) {
            throw new ArmError(
                401,
                'AuthenticationFailed',
                "The 'Authorization' header is missing or not a bearer token.",
            );
        }
        // 'self': tokens must be minted for this emulator's own origin, as the SDKs derive the scope from the endpoint.
        const configured = this.options.expectedAudience;
        const expected = (configured === 'self' ? this.url : configured)?.replace(/\/$/, '');
        const audience = bearerAudience(header);
        if (expected !== undefined && audience?.replace(/\/$/, '') !== expected) {
            const message = `The access token has been obtained for wrong audience or resource '${audience}'.`;
            throw new ArmError(401, 'InvalidAuthenticationTokenAudience', message);
        }
    }

    private route(method: string, url: URL, body: unknown, res: http.ServerResponse): void {
        const path = decodeURIComponent(url.pathname);
        const unknownType = () =>
            new ArmError(404, 'InvalidResourceType', `The resource type for '${path}' could not be found.`);
        const poll = POLL_PATH.exec(path);
        if (poll) {
            const rp = lower(poll[1] ?? '');
            if (isDatabase(rp)) {
                checkApiVersion(url, [...API_VERSIONS[`${rp}/servers`]!, ...API_VERSIONS[`${rp}/flexibleservers`]!]);
            }
            return this.poll(method, lower(poll[2] ?? ''), poll[3] ?? '', res, url);
        }
        const inSubscription = SUBSCRIPTION_LIST_PATH.exec(path);
        if (inSubscription) {
            const [, sub = '', rp = '', kind = ''] = inSubscription;
            const single = isDatabase(rp) && lower(kind) === 'servers';
            const versions = single ? SINGLE_SERVER_GET_VERSIONS : versionsOf(rp, kind);
            if (!versions) {
                throw unknownType();
            }
            checkApiVersion(url, versions);
            requireMethod(method, ['GET']);
            return this.listServers(sub, rp, kind, url, res);
        }
        const m = RESOURCE_PATH.exec(path);
        if (!m) {
            throw unknownType();
        }
        const [, serverPath = '', rg = '', rp = '', kind = '', serverName = '', list, pecName, statusOf] = m;
        const single = isDatabase(rp) && lower(kind) === 'servers';
        const versions = single && !list ? SINGLE_SERVER_GET_VERSIONS : versionsOf(rp, kind);
        if (!versions || (statusOf !== undefined && pecName === undefined)) {
            throw unknownType();
        }
        if (statusOf !== undefined) {
            // A status URL under the connection itself, as Container Registry hands out (operationStatuses).
            return this.poll(method, true, statusOf, res, url);
        }
        checkApiVersion(url, versions);
        const server = this.servers.get(lower(serverPath));
        if (!server) {
            throw notFound(`${rp}/${kind}/${serverName}`, rg);
        }
        if (!list || pecName === undefined) {
            requireMethod(method, ['GET']);
            return list ? this.list(server, url, res) : sendJson(res, 200, serverBody(server));
        }
        requireMethod(method, ['GET', 'PUT', 'PATCH', 'DELETE']);
        if (method === 'GET') {
            this.ops.forEach(
                (op) => op.pec.server === server && lower(op.pec.name) === lower(pecName) && this.advance(op),
            );
        }
        const pec = server.pecs.get(lower(pecName));
        if (!pec) {
            throw notFound(`${rp}/${kind}/${serverName}/privateEndpointConnections/${pecName}`, rg);
        }
        if (method === 'GET' || (method === 'PATCH' && single)) {
            // PATCH on a single server is updateTags: a PEC has no tags, so the connection state must not change.
            return sendJson(res, 200, pecBody(pec));
        }
        if (method === 'DELETE') {
            pec.provisioningState = single ? 'Dropping' : 'Deleting';
            return this.accept(this.newOp(pec, method, url), res);
        }
        const target = validateUpdate(body, single);
        // ARM's RPC: a read-only value sent back unchanged is ignored, a changed one refused.
        const endpoint = (body as { properties?: { privateEndpoint?: { id?: unknown } } } | undefined)?.properties
            ?.privateEndpoint?.id;
        if (typeof endpoint === 'string' && lower(endpoint) !== lower(pec.privateEndpointId)) {
            const message = "properties.privateEndpoint.id is read-only and differs from the connection's.";
            throw new ArmError(400, 'InvalidRequestContent', message);
        }
        if (shapeOf_(server)?.source.sameStatusRefused && lower(pec.status) === lower(target.status)) {
            const message = 'Values for request parameters are invalid: privateLinkServiceConnectionState.status.';
            throw new ArmError(400, 'InvalidValuesForRequestParameters', message);
        }
        // ARM lets one operation run on a resource at a time; a write meanwhile gets 409 AnotherOperationInProgress.
        const running = [...this.ops.values()].find((op) => op.pec === pec && op.status === 'InProgress');
        if (running) {
            throw new ArmError(
                409,
                'AnotherOperationInProgress',
                `Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: ${this.opUrl(running, 'azureAsyncOperation')}.`,
            );
        }
        if (this.atOnce) {
            this.commits.push({ pecId: pec.id, from: pec.status, to: target.status, description: target.description });
            Object.assign(pec, target, { provisioningState: settled(server) });
            return sendJson(res, 200, pecBody(pec));
        }
        const shape = shapeOf_(server);
        if (shape && !this.noAsyncHeaders) {
            return this.putSpecShaped(shape, pec, target, url, res);
        }
        if (this.noAsyncHeaders) {
            this.commits.push({ pecId: pec.id, from: pec.status, to: target.status, description: target.description });
            Object.assign(pec, target, { provisioningState: inFlight(server, target.status) });
            return sendJson(res, 200, pecBody(pec));
        }
        pec.provisioningState = inFlight(server, target.status);
        this.accept(this.newOp(pec, method, url, target), res);
    }

    /**
     * A PUT on a kind with official examples answers as its example does: 200 with the result at once, or 201/202 with
     * Azure-AsyncOperation (and the body where the example has one), the status URL where the example points it.
     */
    private putSpecShaped(
        shape: SpecShape,
        pec: PecRecord,
        target: { status: PecStatus; description: string },
        url: URL,
        res: http.ServerResponse,
    ): void {
        const { putAnswer, statusUrl } = shape.source;
        if (putAnswer === 'sync') {
            this.commits.push({ pecId: pec.id, from: pec.status, to: target.status, description: target.description });
            Object.assign(pec, target, { provisioningState: settled(pec.server) });
            return sendJson(res, 200, pecBody(pec));
        }
        pec.provisioningState = inFlight(pec.server, target.status);
        const op = this.newOp(pec, 'PUT', url, target);
        const status =
            statusUrl === 'operationStatuses'
                ? `${this.url}${pec.id}/operationStatuses/${op.id}?api-version=${op.apiVersion}`
                : this.opUrl(op, (op.statusAt = statusUrl.slice('locations/'.length) as LocationStatus));
        const example = readPutAnswer(shape, putAnswer === 'async-201' ? '201' : '202');
        sendJson(res, putAnswer === 'async-201' ? 201 : 202, example.hasBody ? pecBody(pec) : undefined, {
            'azure-asyncoperation': status,
            'retry-after': String(this.options.retryAfterSeconds),
        });
    }

    private list(server: ServerRecord, url: URL, res: http.ServerResponse): void {
        this.sendPage(listBodies(server), url, res);
    }

    /**
     * A subscription's servers of one provider and type; an empty list when there are none (ARM does not answer 404
     * for an empty collection). The single-server contract (2017-12-01) has no nextLink, so it comes in one page.
     */
    private listServers(sub: string, rp: string, kind: string, url: URL, res: http.ServerResponse): void {
        const all = [...this.servers.values()].filter(
            (s) =>
                lower(s.subscriptionId) === lower(sub) &&
                lower(s.provider) === lower(rp) &&
                lower(s.type) === lower(kind),
        );
        if (isDatabase(rp) && lower(kind) === 'servers') {
            return sendJson(res, 200, { value: all.map(serverBody) });
        }
        this.sendPage(all.map(serverBody), url, res);
    }

    private sendPage(all: readonly object[], url: URL, res: http.ServerResponse): void {
        const skip = Number(url.searchParams.get('$skipToken') ?? '0');
        if (!Number.isInteger(skip) || skip < 0) {
            throw new ArmError(400, 'InvalidSkipToken', 'The $skipToken is not valid.');
        }
        const next = skip + this.options.pageSize;
        const value = all.slice(skip, next);
        const apiVersion = url.searchParams.get('api-version') ?? '';
        const nextLink = `${this.url}${url.pathname}?api-version=${apiVersion}&$skipToken=${next}`;
        sendJson(res, 200, next < all.length ? { value, nextLink } : { value });
    }

    private newOp(pec: PecRecord, method: string, url: URL, target?: OperationRecord['target']): OperationRecord {
        const id = globalThis.crypto.randomUUID();
        const apiVersion = url.searchParams.get('api-version') ?? '';
        const startTime = new Date().toISOString();
        const op: OperationRecord = {
            id,
            pecId: pec.id,
            method,
            status: 'InProgress',
            pec,
            polls: 0,
            target,
            apiVersion,
            startTime,
        };
        this.ops.set(id, op);
        return op;
    }

    private opUrl(op: OperationRecord, kind: LocationStatus): string {
        const { subscriptionId, provider, location } = op.pec.server;
        const region = lower(location).replace(/\s+/g, '');
        const path = `/subscriptions/${subscriptionId}/providers/${provider}/locations/${region}/${kind}/${op.id}`;
        return `${this.url}${path}?api-version=${op.apiVersion}`;
    }

    private acceptAt(op: OperationRecord, at: LocationStatus, res: http.ServerResponse): void {
        sendJson(res, 202, undefined, {
            'azure-asyncoperation': this.opUrl(op, at),
            'retry-after': String(this.options.retryAfterSeconds),
        });
    }

    private accept(op: OperationRecord, res: http.ServerResponse): void {
        // MySQL flexible server's spec (2023-06-30, PrivateEndpointConnections_CreateOrUpdate) documents its 202 with a
        // Location header alone; the other database kinds' with both.
        const locationOnly = op.target !== undefined && isMysqlFlexible(op.pec.server);
        sendJson(res, 202, undefined, {
            ...(locationOnly ? {} : { 'azure-asyncoperation': this.opUrl(op, 'azureAsyncOperation') }),
            location: this.opUrl(op, 'operationResults'),
            'retry-after': String(this.options.retryAfterSeconds),
        });
    }

    private advance(op: OperationRecord): void {
        if (op.status !== 'InProgress' || this.stuck || ++op.polls <= this.options.asyncPolls) {
            return;
        }
        const { pec } = op;
        const present = pec.server.pecs.get(lower(pec.name)) === pec;
        op.endTime = new Date().toISOString();
        if (this.failing || (!present && op.target)) {
            op.status = 'Failed';
            op.error = present
                ? new ArmError(500, 'InternalServerError', 'An unexpected error occurred.')
                : new ArmError(404, 'ResourceNotFound', `The Resource '${pec.id}' was not found.`);
            pec.provisioningState = 'Failed';
            return;
        }
        op.status = 'Succeeded';
        if (op.target) {
            const { status: to, description } = op.target;
            this.commits.push({ pecId: pec.id, from: pec.status, to, description });
            Object.assign(pec, op.target, { provisioningState: settled(pec.server) });
        } else {
            pec.server.pecs.delete(lower(pec.name));
        }
    }

    /** `at`: the status resource asked (lower case), or `true` for a status URL under the connection itself. */
    private poll(method: string, at: string | true, opId: string, res: http.ServerResponse, url: URL): void {
        requireMethod(method, ['GET']);
        const op = this.ops.get(lower(opId));
        if (!op) {
            throw new ArmError(404, 'OperationNotFound', `The operation '${opId}' was not found.`);
        }
        // Only `operationResults` handed out as a Location answers with the resource; the rest with a status body.
        const asyncOperation = at === true || at !== 'operationresults' || lower(op.statusAt ?? '') === at;
        // The status URL is the one handed out, with its own api-version.
        checkApiVersion(url, [op.apiVersion]);
        this.advance(op);
        const { error } = op;
        if (asyncOperation) {
            return sendJson(res, 200, {
                name: op.id,
                status: op.status,
                startTime: op.startTime,
                ...(op.endTime ? { endTime: op.endTime } : {}),
                ...(error ? armErrorBody(error.status, error.code, error.message) : {}),
            });
        }
        if (error) {
            throw error;
        }
        if (op.status === 'InProgress') {
            return op.statusAt ? this.acceptAt(op, op.statusAt, res) : this.accept(op, res);
        }
        const pec = op.pec.server.pecs.get(lower(op.pec.name));
        sendJson(res, pec ? 200 : 204, pec && pecBody(pec));
    }
}

function checkApiVersion(url: URL, allowed: readonly string[]): void {
    const v = url.searchParams.get('api-version');
    if (!v) {
        throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter is required.');
    }
    if (!allowed.includes(v)) {
        const message = `The api-version '${v}' is invalid. The supported versions are '${allowed.join(',')}'.`;
        throw new ArmError(400, 'InvalidApiVersionParameter', message);
    }
}

function requireMethod(method: string, allowed: string[]): void {
    if (!allowed.includes(method)) {
        throw new ArmError(405, 'MethodNotAllowed', `The HTTP method '${method}' is not supported.`);
    }
}

function shapeOf_(server: ServerRecord): SpecShape | undefined {
    return isDatabase(server.provider) ? undefined : shapeOfType(server.provider, server.type);
}

function isMysqlFlexible(server: ServerRecord): boolean {
    return lower(server.provider) === 'microsoft.dbformysql' && lower(server.type) === 'flexibleservers';
}

function isSingle(server: ServerRecord): boolean {
    return isDatabase(server.provider) && lower(server.type) === 'servers';
}

/** The settled provisioning state: the one the kind's example shows (Sql says Ready), else Succeeded. */
function settled(server: ServerRecord): string {
    const shape = shapeOf_(server);
    if (shape) {
        const example = (shape.get.body.properties as { provisioningState?: unknown } | undefined)?.provisioningState;
        return typeof example === 'string' ? example : 'Succeeded';
    }
    return isSingle(server) ? 'Ready' : 'Succeeded';
}

function readPutAnswer(shape: SpecShape, status: '201' | '202'): { hasBody: boolean } {
    const example = readExample(shape.source, shape.source.put);
    return { hasBody: example.responses[status]?.body !== undefined };
}

function inFlight(server: ServerRecord, status: PecStatus): string {
    if (!isSingle(server)) {
        return 'Updating';
    }
    return status === 'Rejected' || status === 'Disconnected' ? 'Rejecting' : 'Approving';
}

function validateUpdate(body: unknown, single: boolean): { status: PecStatus; description: string } {
    type Body = {
        properties?: {
            privateEndpoint?: { id?: unknown };
            privateLinkServiceConnectionState?: { status?: unknown; description?: unknown };
        };
    };
    const properties = (body as Body | undefined)?.properties;
    if (properties && 'privateEndpoint' in properties && typeof properties.privateEndpoint?.id !== 'string') {
        // The private endpoint is read-only here; sent at all, it must name one (the service refuses an empty one).
        const message = 'properties.privateEndpoint.id is required when properties.privateEndpoint is given.';
        throw new ArmError(400, 'InvalidRequestContent', message);
    }
    const state = properties?.privateLinkServiceConnectionState;
    const allowed = ['Pending', 'Approved', 'Rejected', ...(single ? ['Disconnected'] : [])];
    if (typeof state?.status !== 'string' || !allowed.includes(state.status)) {
        const message = `properties.privateLinkServiceConnectionState.status must be one of ${allowed.join(', ')}.`;
        throw new ArmError(400, 'InvalidRequestContent', message);
    }
    const description = state.description ?? (single ? undefined : '');
    if (typeof description !== 'string') {
        const message = 'properties.privateLinkServiceConnectionState.description is required and must be a string.';
        throw new ArmError(400, 'InvalidRequestContent', message);
    }
    return { status: state.status as PecStatus, description };
}

function connectionState(pec: PecRecord) {
    return { status: pec.status, description: pec.description, actionsRequired: 'None' };
}

function pecState(pec: PecRecord): PecState {
    return {
        id: pec.id,
        subscriptionId: pec.server.subscriptionId,
        resourceGroup: pec.server.resourceGroup,
        resourceName: pec.server.name,
        name: pec.name,
        privateEndpointId: pec.privateEndpointId,
        status: pec.status,
        description: pec.description,
        provisioningState: pec.provisioningState,
    };
}

/** A server's connections as its list answers them (every connection twice where the kind's example lists twice). */
function listBodies(server: ServerRecord): object[] {
    const shape = shapeOf_(server);
    const pecs = [...server.pecs.values()];
    if (!shape) {
        return pecs.map(pecBody);
    }
    return pecs.flatMap((p) => {
        const body = renderPec(shape.list, pecState(p));
        return shape.listsTwice ? [body, structuredClone(body)] : [body];
    });
}

function pecBody(pec: PecRecord): object {
    const shape = shapeOf_(pec.server);
    if (shape) {
        return renderPec(shape.get, pecState(pec));
    }
    const { provider, type } = pec.server;
    const groupId = provider === 'Microsoft.DBforMySQL' ? 'mysqlServer' : 'postgresqlServer';
    return {
        id: pec.id,
        name: pec.name,
        type: `${provider}/${type}/privateEndpointConnections`,
        properties: {
            ...(type === 'flexibleServers' ? { groupIds: [groupId] } : {}),
            privateEndpoint: { id: pec.privateEndpointId },
            privateLinkServiceConnectionState: connectionState(pec),
            provisioningState: pec.provisioningState,
        },
    };
}

function serverBody(server: ServerRecord): object {
    const { id, name, provider, type, location, tags, publicNetworkAccess } = server;
    const pecs = [...server.pecs.values()];
    const shape = shapeOf_(server);
    if (shape) {
        const properties: Record<string, unknown> = { provisioningState: 'Succeeded' };
        // publicNetworkAccess where the kind keeps it (["properties", "publicNetworkAccess"] for all of them today).
        const [, ...rest] = shape.source.publicNetworkAccessPath;
        let at = properties;
        rest.forEach((key, i) => {
            if (i === rest.length - 1) {
                at[key] = publicNetworkAccess;
            } else {
                at = (at[key] ??= {}) as Record<string, unknown>;
            }
        });
        if (shape.source.inlineConnections) {
            properties.privateEndpointConnections = listBodies(server);
        }
        return { id, name, type: `${provider}/${type}`, location, tags, properties };
    }
    const fqdn = `${lower(name)}.${provider === 'Microsoft.DBforMySQL' ? 'mysql' : 'postgres'}.database.azure.com`;
    const properties =
        type === 'flexibleServers'
            ? {
                  state: 'Ready',
                  fullyQualifiedDomainName: fqdn,
                  network: { publicNetworkAccess },
                  privateEndpointConnections: pecs.map(pecBody),
              }
            : {
                  userVisibleState: 'Ready',
                  fullyQualifiedDomainName: fqdn,
                  publicNetworkAccess,
                  // The single server embeds a reduced form: id and properties, no name or type.
                  privateEndpointConnections: pecs.map((p) => ({
                      id: p.id,
                      properties: {
                          privateEndpoint: { id: p.privateEndpointId },
                          privateLinkServiceConnectionState: connectionState(p),
                          provisioningState: p.provisioningState,
                      },
                  })),
              };
    return { id, name, type: `${provider}/${type}`, location, tags, properties };
}
