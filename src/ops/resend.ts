import type { CardRef } from '../domain/request';
import type { WorkflowDeps } from '../workflow/deps';
import type { Logger } from '../observability/logger';
import { resendCard, type ResendOptions } from '../workflow/resend';
import { exitCodes, formatTime, safe, type Output } from './output';

/** `pec resend ID`: the workflow's resend, its outcome in words and an exit code. */
export async function resendCommand(
    deps: WorkflowDeps,
    requestId: string,
    output: Output,
    options: ResendOptions = {},
): Promise<number> {
    const log: Logger = {
        info: () => undefined,
        warn: (...args: unknown[]) => output.err(`warning: ${safe(args.map(String).join(' '), 1000)}`),
        error: (...args: unknown[]) => output.err(`error: ${safe(args.map(String).join(' '), 1000)}`),
    };
    const outcome = await resendCard(deps, requestId, log, options);
    switch (outcome.kind) {
        case 'posted': {
            const { card, previous, request } = outcome;
            const where =
                card.channel === 'bot'
                    ? `the Teams channel (conversation ${safe(card.conversationId, 300)}, activity ${safe(card.activityId, 100)})`
                    : 'the Workflows webhook';
            output.out(`Posted a new card for request ${request.id} (${request.status}) to ${where}.`);
            output.out(replaced(previous, request.status === 'pending'));
            if (outcome.warning) {
                output.err(`warning: ${safe(outcome.warning, 1000)}`);
            }
            return exitCodes.ok;
        }
        case 'invalid-id':
            output.err(safe(outcome.reason, 300));
            return exitCodes.usage;
        case 'failed':
            output.err(
                `Could not post the card: ${safe(outcome.reason, 1000)}` +
                    (outcome.retryable ? ' (transient: try again shortly)' : ''),
            );
            return exitCodes.failed;
        default:
            output.err(safe(outcome.reason, 1000));
            return exitCodes.failed;
    }
}

/** What became of the old card: its buttons answer to the request's card only, its link to the newest token only. */
function replaced(previous: CardRef | undefined, pending: boolean): string {
    if (!previous) {
        return 'The request had no card before.';
    }
    const dead = [previous.channel === 'bot' ? 'buttons' : '', pending ? 'web link' : ''].filter(Boolean);
    const posted = `It replaces the ${previous.channel === 'bot' ? '' : 'webhook '}card posted ${formatTime(previous.postedAt)}`;
    return dead.length > 0
        ? `${posted}, whose ${dead.join(' and ')} no longer work${dead.length === 1 ? 's' : ''}.`
        : `${posted}.`;
}
