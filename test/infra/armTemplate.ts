/**
 * Reading a compiled ARM template in tests (infra/main.json, infra/eventSubscription.json): every resource of the
 * template and of its nested deployments (modules), each with the scope its expressions evaluate in, given the
 * parameters a deployment would pass. See armExpressions.ts for what the evaluator knows.
 */
import { evaluate, type Scope } from './armExpressions';

export const tenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const home = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';

export interface Resource {
    type: string;
    name: string;
    condition?: unknown;
    scope?: string;
    properties?: Record<string, unknown> & {
        template?: Template;
        parameters?: Record<string, { value: unknown }>;
    };
    [key: string]: unknown;
}
export interface Template {
    parameters?: Record<string, { type: string; defaultValue?: unknown }>;
    variables?: Record<string, unknown>;
    resources: Resource[] | Record<string, Resource>;
    outputs?: Record<string, { type: string; value: unknown }>;
}

export function scopeOf(template: Template, given: Record<string, unknown>, subscriptionId = home): Scope {
    const parameters: Record<string, unknown> = {};
    for (const [name, p] of Object.entries(template.parameters ?? {})) {
        parameters[name] = name in given ? given[name] : p.defaultValue;
    }
    const scope: Scope = { parameters, variables: {}, subscriptionId, tenantId };
    scope.variables = template.variables ?? {};
    // Parameter defaults may be expressions too.
    for (const [name, value] of Object.entries(parameters)) {
        parameters[name] = evaluate(value, scope);
    }
    return scope;
}

export const resourcesOf = (t: Template): Resource[] =>
    Array.isArray(t.resources) ? t.resources : Object.values(t.resources);

export interface Found {
    resource: Resource;
    /** The scope the resource's expressions evaluate in. */
    scope: Scope;
    /** Module path, e.g. `storage` or `watch/topic`. */
    module: string;
}

/** Every resource of the template and its modules, each with the scope its expressions evaluate in. */
export function allResources(template: Template, scope: Scope, module = ''): Found[] {
    const found: Found[] = [];
    for (const resource of resourcesOf(template)) {
        found.push({ resource, scope, module });
        const nested = resource.properties?.template;
        if (resource.type === 'Microsoft.Resources/deployments' && nested) {
            const given: Record<string, unknown> = {};
            for (const [name, p] of Object.entries(resource.properties?.parameters ?? {})) {
                given[name] = evaluate(p.value, { ...scope, copyIndex: 0 });
            }
            const name = String(evaluate(resource.name, { ...scope, copyIndex: 0 }));
            found.push(
                ...allResources(
                    nested,
                    scopeOf(nested, given, scope.subscriptionId),
                    module ? `${module}/${name}` : name,
                ),
            );
        }
    }
    return found;
}
