'use strict';
/**
 * The answers behind the package's code-cache training run (scripts/code-cache-training.cjs): local servers that let one
 * relevant event go the whole way a first event goes in Azure (token, storage lookup, ARM reads of the connection and
 * its server, request insert and index, audit entry and its blob anchor, card post, telemetry), so V8 compiles, and the
 * package's code cache then holds, every function of that path: the storage-blob and Bot Connector clients included,
 * which the first real event would otherwise compile from source.
 *
 * Nothing here is a test double: it answers in the shapes of the published REST contracts (managed identity token,
 * Table service JSON with odata metadata, Blob service append blobs, ARM GETs of a Pending connection and its server,
 * Bot Connector's conversation create and team roster, Graph's group members, Application Insights' track) only as far as the code needs to run, and keeps
 * no more state than that. A wrong answer costs no correctness, only cache coverage: the cache is compiled code, and V8
 * checks it against the source before use.
 *
 *   const world = await startTrainingWorld({ key, cert });  // PEM strings: the HTTPS server's (trusted through
 *   world.env                                               // NODE_EXTRA_CA_CERTS by the process that runs this)
 *   world.counts                                            // { cards, anchors, telemetry } so far
 *   world.close()
 */
const http = require('node:http');
const https = require('node:https');
const { Buffer } = require('node:buffer');
const { URL } = require('node:url');

const account = 'devstoreaccount1';
/** The connection every server has (the training's events name it). */
const trainingConnectionName = 'pe-training.00000000-0000-4000-8000-000000000007';
/** The one member of the approver group and of the team. */
const trainingApprover = '00000000-0000-4000-8000-000000000008';

function readBody(req) {
    return new Promise((resolve) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
}

function send(res, status, body, headers = {}) {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
        'content-type': typeof body === 'string' ? 'application/xml' : 'application/json',
        'content-length': Buffer.byteLength(text),
        'x-ms-request-id': 'training',
        date: new Date().toUTCString(),
        ...headers,
    });
    res.end(text);
}

let etags = 0;
const nextEtag = () => `W/"datetime'${encodeURIComponent(new Date(Date.now() + etags++).toISOString())}'"`;

/** Table service: entities by table and key, insert / upsert / merge / get / delete, empty queries. */
function tableHandler() {
    const tables = new Map();
    const tableOf = (name) => tables.get(name) ?? tables.set(name, new Map()).get(name);
    const notFound = (res, code = 'ResourceNotFound') =>
        send(res, 404, { 'odata.error': { code, message: { lang: 'en-US', value: `${code} (training)` } } });
    return async (req, res) => {
        const url = new URL(req.url, 'http://training');
        const body = await readBody(req);
        const m = /^\/[^/]+\/([^/(]+)(?:\(PartitionKey='((?:[^']|'')*)',RowKey='((?:[^']|'')*)'\))?$/.exec(
            url.pathname,
        );
        if (!m) {
            return send(res, 400, { 'odata.error': { code: 'InvalidUri', message: { value: 'training' } } });
        }
        const [, table, pk, rk] = m;
        if (table === 'Tables') {
            return send(res, 204, undefined);
        }
        const rows = tableOf(table);
        if (pk === undefined) {
            if (req.method === 'POST') {
                const entity = JSON.parse(body || '{}');
                const key = `${entity.PartitionKey}\u0000${entity.RowKey}`;
                if (rows.has(key)) {
                    return send(res, 409, { 'odata.error': { code: 'EntityAlreadyExists', message: { value: 'x' } } });
                }
                const etag = nextEtag();
                rows.set(key, { entity, etag });
                return send(res, 204, undefined, { etag, 'preference-applied': 'return-no-content' });
            }
            // A query: nothing matches (the training's storage starts empty).
            return send(res, 200, { 'odata.metadata': `http://training/${account}/$metadata#${table}`, value: [] });
        }
        const key = `${pk.replace(/''/g, "'")}\u0000${rk.replace(/''/g, "'")}`;
        const row = rows.get(key);
        const ifMatch = req.headers['if-match'];
        switch (req.method) {
            case 'GET':
                if (!row) {
                    return notFound(res);
                }
                return send(
                    res,
                    200,
                    { 'odata.metadata': `http://training/${account}/$metadata#${table}/@Element`, ...row.entity },
                    { etag: row.etag },
                );
            case 'DELETE':
                rows.delete(key);
                return row ? send(res, 204, undefined) : notFound(res);
            case 'PUT':
            case 'PATCH':
            case 'MERGE': {
                if (ifMatch && ifMatch !== '*' && (!row || row.etag !== ifMatch)) {
                    return row
                        ? send(res, 412, { 'odata.error': { code: 'UpdateConditionNotSatisfied' } })
                        : notFound(res);
                }
                if (ifMatch === '*' && !row) {
                    return notFound(res);
                }
                const entity = JSON.parse(body || '{}');
                const etag = nextEtag();
                const merged = req.method === 'PUT' ? entity : { ...(row ? row.entity : {}), ...entity };
                rows.set(key, { entity: { ...merged, PartitionKey: pk, RowKey: rk }, etag });
                return send(res, 204, undefined, { etag });
            }
            default:
                return send(res, 405, { 'odata.error': { code: 'UnsupportedHttpVerb' } });
        }
    };
}

/** Blob service: one container of append blobs (create, append block, read), and empty listings. */
function blobHandler(counts) {
    const blobs = new Map();
    let container = false;
    const error = (res, status, code) =>
        send(
            res,
            status,
            `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>training</Message></Error>`,
            {
                'x-ms-error-code': code,
            },
        );
    const ok = (res, status, extra = {}) =>
        send(res, status, undefined, {
            etag: '"0x1"',
            'last-modified': new Date().toUTCString(),
            'x-ms-version': '2025-01-05',
            ...extra,
        });
    return async (req, res) => {
        const url = new URL(req.url, 'http://training');
        const body = await readBody(req);
        const parts = url.pathname.split('/').slice(2);
        const restype = url.searchParams.get('restype');
        const comp = url.searchParams.get('comp');
        if (parts.length === 1 && restype === 'container') {
            if (req.method === 'PUT') {
                const existed = container;
                container = true;
                return existed ? error(res, 409, 'ContainerAlreadyExists') : ok(res, 201);
            }
            if (comp === 'list') {
                return send(
                    res,
                    200,
                    `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://training/${account}/" ContainerName="${parts[0]}"><Blobs /><NextMarker /></EnumerationResults>`,
                );
            }
            return ok(res, 200);
        }
        const name = parts.slice(1).join('/');
        if (req.method === 'PUT' && comp === 'appendblock') {
            if (!blobs.has(name)) {
                return error(res, 404, container ? 'BlobNotFound' : 'ContainerNotFound');
            }
            blobs.set(name, blobs.get(name) + body);
            counts.anchors++;
            return ok(res, 201, { 'x-ms-blob-append-offset': '0', 'x-ms-blob-committed-block-count': '1' });
        }
        if (req.method === 'PUT') {
            if (!container) {
                return error(res, 404, 'ContainerNotFound');
            }
            if (req.headers['if-none-match'] === '*' && blobs.has(name)) {
                return error(res, 409, 'BlobAlreadyExists');
            }
            blobs.set(name, '');
            return ok(res, 201);
        }
        if (req.method === 'GET' || req.method === 'HEAD') {
            if (!blobs.has(name)) {
                return error(res, 404, 'BlobNotFound');
            }
            const text = blobs.get(name);
            res.writeHead(200, {
                'content-length': Buffer.byteLength(text),
                'x-ms-blob-type': 'AppendBlob',
                etag: '"0x1"',
            });
            return res.end(req.method === 'GET' ? text : undefined);
        }
        return error(res, 400, 'UnsupportedHttpVerb');
    };
}

/** Token endpoint, ARM, Bot Connector and Application Insights, on one HTTPS server. */
function httpsHandler(counts) {
    return async (req, res) => {
        const url = new URL(req.url, 'https://training');
        const body = await readBody(req);
        if (url.pathname === '/msi/token') {
            return send(res, 200, {
                access_token: 'training-token',
                expires_on: String(Math.floor(Date.now() / 1000) + 3600),
                resource: url.searchParams.get('resource') ?? '',
                token_type: 'Bearer',
            });
        }
        if (url.pathname.endsWith('/v3/conversations')) {
            counts.cards++;
            return send(res, 201, { id: '19:training@thread.tacv2;messageid=1', activityId: '1' });
        }
        if (url.pathname.endsWith('/transitiveMembers/microsoft.graph.user')) {
            // Graph: the approver group's users (one page).
            return send(res, 200, {
                '@odata.count': 1,
                value: [
                    { id: trainingApprover, displayName: 'Training Approver', userPrincipalName: 'approver@training' },
                ],
            });
        }
        if (url.pathname.endsWith('/pagedmembers')) {
            // Bot Connector: the team's roster, matched with the group's users for the card's refresh list.
            return send(res, 200, {
                members: [{ id: '29:training-approver', name: 'Training Approver', objectId: trainingApprover }],
            });
        }
        if (url.pathname.endsWith('/track')) {
            counts.telemetry++;
            const items = body.split('\n').filter((l) => l.trim()).length;
            return send(res, 200, { itemsReceived: items, itemsAccepted: items, errors: [] });
        }
        const pec =
            /^(\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/([^/]+)\/([^/]+)\/([^/]+))\/privateEndpointConnections\/([^/]+)$/i.exec(
                url.pathname,
            );
        if (pec && req.method === 'GET') {
            return send(res, 200, connection(pec[1], pec[2], pec[3], pec[5]));
        }
        const server = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/([^/]+)\/([^/]+)\/([^/]+)$/i.exec(
            url.pathname,
        );
        if (server && req.method === 'GET') {
            const [, provider, type, name] = server;
            return send(res, 200, {
                id: url.pathname,
                name,
                type: `${provider}/${type}`,
                location: 'westeurope',
                tags: {},
                properties: { provisioningState: 'Succeeded', publicNetworkAccess: 'Disabled', state: 'Ready' },
            });
        }
        const list =
            /^(\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/([^/]+)\/([^/]+)\/[^/]+)\/privateEndpointConnections$/i.exec(
                url.pathname,
            );
        if (list && req.method === 'GET') {
            // Every server has one connection, Pending: the one the training's events are about.
            return send(res, 200, { value: [connection(list[1], list[2], list[3], trainingConnectionName)] });
        }
        return send(res, 404, { error: { code: 'NotFound', message: 'training' } });
    };
}

function connection(serverId, provider, type, name) {
    return {
        id: `${serverId}/privateEndpointConnections/${name}`,
        name,
        type: `${provider}/${type}/privateEndpointConnections`,
        properties: {
            privateEndpoint: {
                id: '/subscriptions/00000000-0000-4000-8000-0000000000aa/resourceGroups/rg-requester/providers/Microsoft.Network/privateEndpoints/pe-training',
            },
            privateLinkServiceConnectionState: { status: 'Pending', description: 'training', actionsRequired: 'None' },
            provisioningState: 'Ready',
        },
    };
}

function listen(server) {
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

async function startTrainingWorld(tls) {
    /** What the events got to: cards posted, audit anchors appended, telemetry batches sent. */
    const counts = { cards: 0, anchors: 0, telemetry: 0 };
    const table = http.createServer(tableHandler());
    const blob = http.createServer(blobHandler(counts));
    const secure = https.createServer(tls, httpsHandler(counts));
    const [tablePort, blobPort, securePort] = await Promise.all([listen(table), listen(blob), listen(secure)]);
    const base = `https://127.0.0.1:${securePort}`;
    return {
        counts,
        env: {
            ARM_ENDPOINT: base,
            TEAMS_SERVICE_URL: `${base}/teams/`,
            GRAPH_ENDPOINT: base,
            IDENTITY_ENDPOINT: `${base}/msi/token`,
            APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=00000000-0000-4000-8000-000000000006;IngestionEndpoint=${base}/`,
            tableEndpoint: `http://127.0.0.1:${tablePort}/${account}`,
            blobEndpoint: `http://127.0.0.1:${blobPort}/${account}`,
        },
        close() {
            for (const s of [table, blob, secure]) {
                s.closeAllConnections?.();
                s.close();
            }
        },
    };
}

module.exports = { startTrainingWorld, trainingConnectionName };
