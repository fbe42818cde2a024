/**
 * Captures what functions/ registers, through a virtual @azure/functions-core (the host's side of the contract), and
 * checks each function's trigger and bindings. Sensitive routes must keep their auth level.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

interface Binding {
    type: string;
    direction: string;
    authLevel?: string;
    route?: string;
    methods?: string[];
    queueName?: string;
    connection?: string;
    schedule?: string;
}
interface Registered {
    name: string;
    bindings: Record<string, Binding>;
}

import { applyQueueName } from '../../src/storage/applyQueue';

const registered: Registered[] = [];
const hooks: string[] = [];

jest.mock(
    '@azure/functions-core',
    () => ({
        registerFunction: (metadata: Registered) => {
            registered.push(metadata);
            return { dispose: () => undefined };
        },
        setProgrammingModel: () => undefined,
        registerHook: (name: string) => {
            hooks.push(name);
            return { dispose: () => undefined };
        },
    }),
    { virtual: true },
);

const functionsDir = path.join(__dirname, '..', '..', 'functions');

beforeAll(async () => {
    for (const file of readdirSync(functionsDir).filter((f) => f.endsWith('.ts'))) {
        await import(path.join(functionsDir, file));
    }
});

function trigger(name: string): Binding {
    const fn = registered.find((r) => r.name === name);
    if (!fn) {
        throw new Error(`${name} is not registered; registered: ${registered.map((r) => r.name).join(', ')}`);
    }
    const found = Object.values(fn.bindings).find((b) => b.direction === 'in' && /Trigger$/.test(b.type));
    if (!found) {
        throw new Error(`${name} has no trigger`);
    }
    return found;
}

describe('function registrations', () => {
    it('registers pecEvents as an Event Grid trigger', () => {
        expect(trigger('pecEvents').type).toBe('eventGridTrigger');
    });

    it('registers the bot endpoint at /api/messages, POST only', () => {
        expect(trigger('teamsMessages')).toMatchObject({ type: 'httpTrigger', route: 'messages', methods: ['POST'] });
    });

    it('registers the web decision page at /api/requests/{id}, GET and POST', () => {
        expect(trigger('decisionPage')).toMatchObject({ type: 'httpTrigger', route: 'requests/{id}' });
        expect([...(trigger('decisionPage').methods ?? [])].sort()).toEqual(['GET', 'POST']);
    });

    it('registers the dashboard at /api/dashboard, GET only: it never changes anything', () => {
        expect(trigger('dashboard')).toMatchObject({ type: 'httpTrigger', route: 'dashboard', methods: ['GET'] });
    });

    it('registers applyDecision on the apply queue, with the identity-capable storage connection', () => {
        expect(trigger('applyDecision')).toMatchObject({
            type: 'queueTrigger',
            queueName: applyQueueName,
            connection: 'AzureWebJobsStorage',
        });
    });

    it('registers the sweep as a timer whose schedule is the SWEEP_SCHEDULE setting', () => {
        expect(trigger('sweep')).toMatchObject({ type: 'timerTrigger', schedule: '%SWEEP_SCHEDULE%' });
    });

    it('validates the settings when the host starts', () => {
        expect(hooks).toContain('appStart');
    });

    it('registers no function twice', () => {
        const names = registered.map((r) => r.name);
        expect(new Set(names).size).toBe(names.length);
    });

    it('keeps every HTTP route at its intended auth level', () => {
        // /api/messages must be anonymous at the host (the Bot Framework JWT is checked in code); everything else
        // that is HTTP must not be anonymous unless listed here with the reason.
        const anonymousByDesign: Record<string, string> = {
            teamsMessages: 'Bot Framework JWT verified in code',
            decisionPage: 'App Service Authentication in front, checked in code',
            dashboard: 'App Service Authentication in front, checked in code, and group membership through Graph',
        };
        for (const fn of registered) {
            for (const binding of Object.values(fn.bindings)) {
                if (binding.type === 'httpTrigger' && binding.authLevel === 'anonymous') {
                    expect(anonymousByDesign).toHaveProperty(fn.name);
                }
            }
        }
    });
});
