import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { resourceKinds, roleActionsOf } from '../../src/domain/resourceKinds';

/**
 * ARM refuses a whole custom role with `InvalidActionOrNotAction` when one of its actions is not an operation its
 * provider lists, so a role action guessed from a naming rule breaks the deployment of every kind watched with it.
 * Every action of every kind is held against rows of Microsoft's list of provider operations, stored verbatim.
 */
interface ProviderOperations {
    source: { repository: string; folder: string; commits: Record<string, string> };
    operations: { file: string; action: string; description: string }[];
    notListed: string[];
}

const fixture = JSON.parse(
    readFileSync(path.join(__dirname, '..', 'fixtures', 'providerOperations.json'), 'utf8'),
) as ProviderOperations;
const listed = new Set(fixture.operations.map((o) => o.action.toLowerCase()));

describe("the custom role's actions against Microsoft's list of provider operations", () => {
    it('grants, for every kind, only operations its provider lists', () => {
        const unlisted = resourceKinds.flatMap((kind) =>
            roleActionsOf(kind)
                .filter((action) => !listed.has(action.toLowerCase()))
                .map((action) => `${kind.id}: ${action}`),
        );
        expect(unlisted).toEqual([]);
    });

    it('never grants an action looked for and not found', () => {
        const notListed = new Set(fixture.notListed.map((a) => a.toLowerCase()));
        expect(notListed.size).toBeGreaterThan(0);
        const granted = resourceKinds.flatMap((kind) => roleActionsOf(kind).map((a) => a.toLowerCase()));
        expect(granted.filter((a) => notListed.has(a))).toEqual([]);
    });

    it('keeps each row with the file and commit it was copied from', () => {
        for (const row of fixture.operations) {
            expect(fixture.source.commits[row.file]).toMatch(/^[0-9a-f]{40}$/);
            expect(row.action).toMatch(/^Microsoft\.[A-Za-z]+\/[A-Za-z/]+$/i);
        }
    });
});
