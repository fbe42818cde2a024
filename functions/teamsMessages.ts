import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { ensureErrorType, UnauthorizedError } from '../src/domain/errors';
import { observe } from '../src/observability/invocation';
import { getBotTokenVerifier, getDeps } from '../src/runtime';
import type { Logger } from '../src/observability/logger';
import { issuesText } from '../src/workflow/validation';
import { activityEnvelopeSchema, cardActionSchema, errorResponse, handleCardAction } from '../src/workflow/teamsInvoke';

/** Bot Framework activities are small; anything bigger is not one, and is not worth parsing. */
const maxBodyBytes = 256 * 1024;

/**
 * The bot's messaging endpoint. Anonymous at the host because the Bot Framework calls it with its own JWT, which is
 * verified here before anything else is read: a request without a valid token gets 401 and causes no other I/O.
 */
export async function teamsMessages(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return observe(context, {}, (log) => handleActivity(request, log));
}

async function handleActivity(request: HttpRequest, log: Logger): Promise<HttpResponseInit> {
    if (!request.headers.get('authorization')) {
        log.warn('Refused /api/messages: no Authorization header');
        return { status: 401, jsonBody: { error: 'Unauthorized' } };
    }
    const raw = await readCapped(request);
    let body: unknown;
    try {
        body = raw === undefined ? undefined : JSON.parse(raw);
    } catch {
        body = undefined;
    }
    const claimed = (typeof body === 'object' && body !== null ? body : {}) as {
        serviceUrl?: unknown;
        channelId?: unknown;
    };
    try {
        const verifier = await getBotTokenVerifier();
        await verifier.verify(request.headers.get('authorization') ?? undefined, {
            serviceUrl: claimed.serviceUrl,
            channelId: claimed.channelId,
        });
    } catch (err) {
        const e = ensureErrorType(err);
        log.warn(`Refused /api/messages: ${e instanceof UnauthorizedError ? e.message : 'token check failed'}`);
        return { status: 401, jsonBody: { error: 'Unauthorized' } };
    }

    const envelope = activityEnvelopeSchema.safeParse(body);
    if (!envelope.success) {
        log.warn(`Invalid activity: ${issuesText(envelope.error)}`);
        return { status: 400, jsonBody: { error: 'Invalid activity' } };
    }
    if (envelope.data.type !== 'invoke' || envelope.data.name !== 'adaptiveCard/action') {
        // Installs, conversation updates and messages need no answer from an approval bot.
        log.info(`Ignored a ${envelope.data.type} activity`);
        return { status: 200 };
    }
    const action = cardActionSchema.safeParse(body);
    if (!action.success) {
        log.warn(`Invalid card action: ${issuesText(action.error)}`);
        return { status: 200, jsonBody: errorResponse(400, 'This card action is not valid') };
    }
    const response = await handleCardAction(getDeps(), action.data, log);
    return { status: 200, jsonBody: response };
}

async function readCapped(request: HttpRequest): Promise<string | undefined> {
    const length = Number(request.headers.get('content-length') ?? '0');
    if (length > maxBodyBytes) {
        return undefined;
    }
    const text = await request.text();
    return Buffer.byteLength(text) > maxBodyBytes ? undefined : text;
}

app.http('teamsMessages', {
    route: 'messages',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: teamsMessages,
});
