import { cleanText } from '../domain/card';
import type { AdaptiveCardJson, CardElementJson } from './adaptiveCard';

/**
 * The one summary card of a baseline: the connections that were already Approved when the gate first looked at a
 * subscription and server kind, and that come from untrusted or unknown origins. Nothing in it was revoked; each
 * entry links to its own decision page, where an approver can Revoke or Keep it through every check a decision has.
 * Values are TextRuns, which Teams never runs markdown over, as on the request card.
 */

export interface BaselineEntry {
    serverName: string;
    pecName: string;
    privateEndpointId: string;
    /** "another tenant 9a1b…", "unknown origin", "our tenant, untrusted subscription". */
    origin: string;
    reviewUrl: string;
}

/** Teams renders long cards poorly; the rest are listed by `pec list`. */
export const baselineCardMaxEntries = 25;

export function renderBaselineCard(entries: BaselineEntry[], total: number, recorded: number): AdaptiveCardJson {
    const shown = entries.slice(0, baselineCardMaxEntries);
    const body: CardElementJson[] = [
        {
            type: 'TextBlock',
            text: 'Baseline: connections approved before the gate watched these servers',
            size: 'Medium',
            weight: 'Bolder',
            wrap: true,
        },
        runs(
            `${recorded} approved connection(s) were recorded as the baseline; ${total} of them come from untrusted ` +
                'or unknown origins. Nothing was revoked. Review each: Revoke or Keep.',
        ),
    ];
    for (const entry of shown) {
        body.push({
            type: 'Container',
            separator: true,
            spacing: 'Medium',
            items: [
                runs(`${cleanText(entry.serverName, 120)} ← ${cleanText(entry.pecName, 200)}`, true),
                runs(`Private endpoint: ${cleanText(entry.privateEndpointId, 400)}`),
                runs(`Origin: ${cleanText(entry.origin, 200)}`),
                {
                    type: 'ActionSet',
                    actions: [{ type: 'Action.OpenUrl', title: 'Review: Revoke or Keep', url: entry.reviewUrl }],
                },
            ],
        });
    }
    if (entries.length > shown.length) {
        body.push(runs(`… and ${entries.length - shown.length} more: npm run pec -- list (pending requests)`));
    }
    return {
        type: 'AdaptiveCard',
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        version: '1.5',
        body,
        actions: [],
        msteams: { width: 'Full' },
        fallbackText: baselineSummary(total),
    };
}

export function baselineSummary(total: number): string {
    return `Baseline: ${total} approved connection(s) from untrusted or unknown origins to review`;
}

function runs(text: string, bold = false): CardElementJson {
    return {
        type: 'RichTextBlock',
        inlines: [{ type: 'TextRun', text, ...(bold ? { weight: 'Bolder' } : {}) }],
    };
}
