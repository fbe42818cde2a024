import type { AuditActor, AuditEntry } from '../domain/audit';
import { isRequestId, type ApprovalRequest, type Person } from '../domain/request';
import { checkChain, missingTrail, type ChainCheck } from './chain';
import type { OpsStores } from './connection';
import { exitCodes, formatTime, renderFields, safe, type Output } from './output';
import { kindLabel, summarize } from './summary';

export interface ShowOptions {
    json: boolean;
    now: Date;
}

/**
 * `pec show ID`: the request's fields, its audit trail and whether the chain verifies. Exits 1 when there is neither
 * a request nor a trail, or when the trail does not verify, so a script can rely on the exit code.
 */
export async function showCommand(
    stores: OpsStores,
    requestId: string,
    options: ShowOptions,
    output: Output,
): Promise<number> {
    if (!isRequestId(requestId)) {
        output.err(`${JSON.stringify(safe(requestId, 100))} is not a request id (22 to 64 letters, digits, - and _)`);
        return exitCodes.usage;
    }
    const [stored, entries] = await Promise.all([stores.requests.get(requestId), stores.audit.list(requestId)]);
    if (!stored && entries.length === 0) {
        output.err(`No request ${requestId}, and no audit entries for it`);
        return exitCodes.failed;
    }
    const chain = chainOf(requestId, entries, stored !== undefined);
    if (options.json) {
        output.out(
            JSON.stringify(
                {
                    request: stored ? redact(stored.request) : null,
                    summary: stored ? summarize(stored.request, options.now) : null,
                    audit: { ...chain, trail: entries },
                },
                null,
                2,
            ),
        );
        return chain.ok ? exitCodes.ok : exitCodes.failed;
    }
    if (stored) {
        for (const line of renderFields(requestFields(stored.request, options.now))) {
            output.out(line);
        }
    } else {
        output.out(`Request ${requestId}: NOT in the requests table (only its audit trail is left)`);
    }
    output.out('');
    renderTrail(entries, chain, output);
    return chain.ok ? exitCodes.ok : exitCodes.failed;
}

/** `pec audit ID`: the trail alone. */
export async function auditTrailCommand(
    stores: OpsStores,
    requestId: string,
    options: { json: boolean },
    output: Output,
): Promise<number> {
    if (!isRequestId(requestId)) {
        output.err(`${JSON.stringify(safe(requestId, 100))} is not a request id (22 to 64 letters, digits, - and _)`);
        return exitCodes.usage;
    }
    const entries = await stores.audit.list(requestId);
    const exists = entries.length > 0 || (await stores.requests.get(requestId)) !== undefined;
    if (!exists) {
        output.err(`No request ${requestId}, and no audit entries for it`);
        return exitCodes.failed;
    }
    const chain = chainOf(requestId, entries, true);
    if (options.json) {
        output.out(JSON.stringify({ ...chain, trail: entries }, null, 2));
    } else {
        renderTrail(entries, chain, output);
    }
    return chain.ok ? exitCodes.ok : exitCodes.failed;
}

function chainOf(requestId: string, entries: readonly AuditEntry[], requestExists: boolean): ChainCheck {
    return entries.length === 0 && requestExists ? missingTrail(requestId) : checkChain(requestId, entries);
}

/** The trail, one block per entry: time, action, actor; then the text, the change and the detail. */
export function renderTrail(entries: readonly AuditEntry[], chain: ChainCheck, output: Output): void {
    const verdict = chain.ok
        ? `chain verifies (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'})`
        : `chain BROKEN (${chain.findings.length} finding${chain.findings.length === 1 ? '' : 's'})`;
    output.out(`Audit trail: ${verdict}`);
    for (const finding of chain.findings) {
        output.out(`  ! ${finding.kind}: ${finding.message}`);
    }
    const seqWidth = Math.max(2, ...entries.map((e) => String(e.seq).length + 1));
    const actionWidth = Math.max(0, ...entries.map((e) => safe(e.action, 40).length));
    for (const entry of entries) {
        output.out('');
        output.out(
            `  ${`#${entry.seq}`.padEnd(seqWidth)}  ${formatTime(entry.at)}  ` +
                `${safe(entry.action, 40).padEnd(actionWidth)}  ${actorLabel(entry.actor)}`,
        );
        const fields: [string, string][] = [];
        if (entry.text) {
            fields.push(['text', safe(entry.text, 2000, { multiline: true })]);
        }
        const change = describeChange(entry.before, entry.after);
        if (change) {
            fields.push(['change', change]);
        }
        if (entry.detail) {
            fields.push(['detail', safe(entry.detail, 2000, { multiline: true })]);
        }
        for (const line of renderFields(fields, ' '.repeat(seqWidth + 4))) {
            output.out(line);
        }
    }
}

export function actorLabel(actor: AuditActor | undefined): string {
    if (!actor) {
        return '?';
    }
    const who = [safe(actor.name, 100), actor.id && actor.id !== actor.name ? `(${safe(actor.id, 100)})` : '']
        .filter(Boolean)
        .join(' ');
    return who ? `${safe(actor.kind, 20)} ${who}` : safe(actor.kind, 20);
}

/** `before → after`, field by field for objects (only the fields that changed), each value cut short. */
export function describeChange(before: unknown, after: unknown): string {
    if (before === undefined && after === undefined) {
        return '';
    }
    const isObject = (v: unknown): v is Record<string, unknown> =>
        typeof v === 'object' && v !== null && !Array.isArray(v);
    if ((before === undefined || isObject(before)) && (after === undefined || isObject(after))) {
        const b = before ?? {};
        const a = after ?? {};
        const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
        const parts = keys
            .filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
            .map((k) => `${safe(k, 40)}: ${arrow(b[k], a[k])}`);
        return safe(parts.join('; '), 400);
    }
    return safe(arrow(before, after), 400);
}

function arrow(before: unknown, after: unknown): string {
    if (before === undefined) {
        return short(after);
    }
    return `${short(before)} → ${after === undefined ? '(none)' : short(after)}`;
}

function short(value: unknown): string {
    return safe(typeof value === 'string' ? value : JSON.stringify(value), 80);
}

function personLabel(person: Person | undefined): string {
    if (!person) {
        return 'unknown';
    }
    const name = safe(person.name, 100);
    const upn = safe(person.upn, 100);
    const label = name && upn && name !== upn ? `${name} <${upn}>` : name || upn || '';
    return label || safe(person.objectId ?? person.appId, 100) || 'unknown';
}

function requestFields(request: ApprovalRequest, now: Date): [string, string][] {
    const s = summarize(request, now);
    const f = request.facts;
    const r = request.requester;
    const fields: [string, string][] = [
        ['Request', request.id],
        ['Status', s.state],
        ['Server', `${s.server} (${kindLabel(f.serverKind)}, ${safe(f.serverLocation, 60)})\n${safe(f.serverId, 600)}`],
        [
            'Server facts',
            `public network access ${safe(f.publicNetworkAccess, 20)}; ${f.approvedPecCount} approved connection(s), ` +
                `${f.approvedUntrustedPecCount} from untrusted subscriptions`,
        ],
        ['PEC', `${s.pecName}\n${s.pecId}`],
        [
            'Endpoint',
            `${safe(f.privateEndpointId, 600)}\n` +
                `subscription ${s.origin.endpointSubscriptionId ?? 'unknown'}: ${s.origin.endpointSubscription}`,
        ],
        [
            'Requester',
            r
                ? [
                      personLabel(r),
                      r.objectId ? `object id ${safe(r.objectId, 100)}` : '',
                      r.tenantId ? `tenant ${safe(r.tenantId, 100)} (${s.origin.requesterTenant})` : '',
                      r.ipAddress ? `ip ${safe(r.ipAddress, 60)}` : '',
                  ]
                      .filter(Boolean)
                      .join(', ')
                : 'unknown (found by the sweep; no event named the requester)',
        ],
        ['Origin', s.origin.label],
        ['Message', safe(f.requestMessage, 2000, { multiline: true }) || '(none)'],
        ['Opened', `${formatTime(request.createdAt)} (${s.age} ago); updated ${formatTime(request.updatedAt)}`],
    ];
    if (request.policyRuleId) {
        fields.push(['Policy', `rule ${safe(request.policyRuleId, 64)}`]);
    }
    if (request.requiredApprovals && request.requiredApprovals > 1) {
        const given = (request.approvals ?? []).map((a) => `${personLabel(a.by)} at ${formatTime(a.at)}`);
        fields.push([
            'Approvals',
            `${given.length} of ${request.requiredApprovals}${given.length > 0 ? `\n${given.join('\n')}` : ''}`,
        ]);
    }
    const d = request.decision;
    if (d) {
        const cause = d.auto
            ? d.auto.kind === 'policy'
                ? ` (policy rule ${safe(d.auto.ruleId, 64)})`
                : ` (expiry after ${d.auto.afterHours}h)`
            : '';
        const text = safe(d.text, 500, { multiline: true });
        fields.push([
            'Decision',
            `${d.action} by ${personLabel(d.by)}${cause} at ${formatTime(d.at)}${text ? `\n"${text}"` : ''}`,
        ]);
    }
    if (request.outcome) {
        fields.push(['Outcome', `${formatTime(request.outcome.at)}: ${safe(request.outcome.reason, 500)}`]);
    }
    const card = request.card;
    fields.push([
        'Card',
        card
            ? `${card.channel}, posted ${formatTime(card.postedAt)}; ${
                  s.card.state === 'current'
                      ? 'up to date'
                      : `shows ${safe(request.cardShows ?? 'nothing', 40)} (behind)`
              }` +
              (card.conversationId ? `\nconversation ${safe(card.conversationId, 300)}` : '') +
              (card.activityId ? `\nactivity ${safe(card.activityId, 100)}` : '')
            : s.card.label,
    ]);
    if (request.link) {
        fields.push([
            'Web link',
            `expires ${formatTime(request.link.expiresAt)}${request.link.usedAt ? `, used ${formatTime(request.link.usedAt)}` : ''}`,
        ]);
    }
    if (request.reminders) {
        fields.push(['Reminders', `${request.reminders.count}, last ${formatTime(request.reminders.lastAt)}`]);
    }
    if (request.applying) {
        fields.push([
            'Applying',
            `since ${formatTime(request.applying.at)} (message ${safe(request.applying.messageId, 100)})`,
        ]);
    }
    fields.push(['Correlation', safe(request.correlationId, 200)]);
    return fields;
}

/**
 * The request without its web link's secrets: the token's hash would let a reader test guesses offline, and the page
 * key signs the decision form's CSRF tokens. Neither is any use to an operator.
 */
export function redact(request: ApprovalRequest): ApprovalRequest {
    if (!request.link) {
        return request;
    }
    const { tokenHash: _hash, pageKey: _key, ...link } = request.link;
    return { ...request, link: link as ApprovalRequest['link'] };
}
