/**
 * Just enough of ARM's template language to read a compiled template in tests: a parser for `[...]` expressions and an
 * evaluator for the functions Bicep emits into infra/main.json. Values only Azure knows at deployment time (a
 * `reference()` of another deployment's outputs, a resource's runtime properties) evaluate to a `Runtime` marker that
 * names where the value comes from, so a test can say "this setting is the identity module's clientId output".
 * Deterministic stand-ins replace uniqueString() and guid(); a test that needs their real values must not use this.
 */

export type Ast =
    | { kind: 'string'; value: string }
    | { kind: 'number'; value: number }
    | { kind: 'call'; name: string; args: Ast[] }
    | { kind: 'member'; target: Ast; property: string }
    | { kind: 'index'; target: Ast; index: Ast };

/** A value Azure supplies at deployment: `source` says which (for example `identity.outputs.clientId`). */
export class Runtime {
    constructor(readonly source: string) {}
    toString(): string {
        return `<${this.source}>`;
    }
}

export function isExpression(value: unknown): value is string {
    return typeof value === 'string' && value.startsWith('[') && !value.startsWith('[[') && value.endsWith(']');
}

export function parse(expression: string): Ast {
    const text = expression.slice(1, -1);
    let i = 0;
    const ws = () => {
        while (/\s/.test(text[i] ?? '')) {
            i += 1;
        }
    };
    const primary = (): Ast => {
        ws();
        const c = text[i];
        if (c === "'") {
            let value = '';
            i += 1;
            for (;;) {
                if (i >= text.length) {
                    throw new Error(`unterminated string in ${expression}`);
                }
                if (text[i] === "'") {
                    if (text[i + 1] === "'") {
                        value += "'";
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                value += text[i];
                i += 1;
            }
            return { kind: 'string', value };
        }
        const num = /^-?\d+/.exec(text.slice(i));
        if (num) {
            i += num[0].length;
            return { kind: 'number', value: Number(num[0]) };
        }
        const ident = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i));
        if (!ident) {
            throw new Error(`unexpected '${c}' at ${i} in ${expression}`);
        }
        i += ident[0].length;
        ws();
        if (text[i] !== '(') {
            throw new Error(`expected ( after ${ident[0]} in ${expression}`);
        }
        i += 1;
        const args: Ast[] = [];
        ws();
        if (text[i] === ')') {
            i += 1;
        } else {
            for (;;) {
                args.push(postfix());
                ws();
                if (text[i] === ',') {
                    i += 1;
                    continue;
                }
                if (text[i] === ')') {
                    i += 1;
                    break;
                }
                throw new Error(`expected , or ) at ${i} in ${expression}`);
            }
        }
        return { kind: 'call', name: ident[0].toLowerCase(), args };
    };
    const postfix = (): Ast => {
        let node = primary();
        for (;;) {
            ws();
            if (text[i] === '.') {
                i += 1;
                const prop = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(i));
                if (!prop) {
                    throw new Error(`expected a property at ${i} in ${expression}`);
                }
                i += prop[0].length;
                node = { kind: 'member', target: node, property: prop[0] };
            } else if (text[i] === '[') {
                i += 1;
                const index = postfix();
                ws();
                if (text[i] !== ']') {
                    throw new Error(`expected ] at ${i} in ${expression}`);
                }
                i += 1;
                node = { kind: 'index', target: node, index };
            } else {
                return node;
            }
        }
    };
    const ast = postfix();
    ws();
    if (i !== text.length) {
        throw new Error(`trailing text at ${i} in ${expression}`);
    }
    return ast;
}

export interface Scope {
    parameters: Record<string, unknown>;
    /** The template's variables (evaluated lazily, in this scope). */
    variables: Record<string, unknown>;
    subscriptionId: string;
    tenantId: string;
    /** Index of the current copy loop iteration, if any. */
    copyIndex?: number;
    /** Indexes of named copy loops (variable copies) being evaluated. */
    copyIndexes?: Record<string, number>;
}

interface VariableCopy {
    name: string;
    count: unknown;
    input: unknown;
}

const publicCloud = {
    name: 'AzureCloud',
    resourceManager: 'https://management.azure.com/',
    portal: 'https://portal.azure.com',
    authentication: { loginEndpoint: 'https://login.microsoftonline.com/' },
    suffixes: { storage: 'core.windows.net' },
};

function fakeHash(parts: unknown[], length: number): string {
    let h = 2166136261;
    for (const ch of JSON.stringify(parts)) {
        h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    }
    return h.toString(36).padStart(length, 'a').slice(0, length);
}

/** Deployment names of reference() targets: "identity" from extensionResourceId(..., 'Microsoft.Resources/deployments', 'identity'). */
function referenceName(target: unknown): string {
    if (typeof target === 'string') {
        return target.split('/').pop() ?? target;
    }
    return String(target);
}

export function evaluate(value: unknown, scope: Scope, lambdas: Record<string, unknown> = {}): unknown {
    if (Array.isArray(value)) {
        return value.map((v) => evaluate(v, scope, lambdas));
    }
    if (value && typeof value === 'object' && !(value instanceof Runtime)) {
        const entries = Object.entries(value).filter(([k]) => k !== 'copy');
        const out = Object.fromEntries(entries.map(([k, v]) => [k, evaluate(v, scope, lambdas)]));
        // A property copy loop: `copy: [{ name, count, input }]` makes the array property `name`.
        const copies = (value as { copy?: unknown }).copy;
        if (Array.isArray(copies)) {
            for (const c of copies as VariableCopy[]) {
                const count = evaluate(c.count, scope, lambdas) as number;
                out[c.name] = Array.from({ length: count }, (_, k) =>
                    evaluate(c.input, { ...scope, copyIndexes: { ...scope.copyIndexes, [c.name]: k } }, lambdas),
                );
            }
        }
        return out;
    }
    if (!isExpression(value)) {
        return typeof value === 'string' && value.startsWith('[[') ? value.slice(1) : value;
    }
    return evalAst(parse(value), scope, lambdas);
}

const variableCache = new WeakMap<Scope, Map<string, unknown>>();

function variable(name: string, scope: Scope): unknown {
    let cache = variableCache.get(scope);
    if (!cache) {
        cache = new Map();
        variableCache.set(scope, cache);
    }
    if (!cache.has(name)) {
        const copy = ((scope.variables.copy ?? []) as VariableCopy[]).find((c) => c.name === name);
        if (copy) {
            const count = evaluate(copy.count, scope) as number;
            cache.set(
                name,
                Array.from({ length: count }, (_, k) =>
                    evaluate(copy.input, { ...scope, copyIndexes: { ...scope.copyIndexes, [name]: k } }),
                ),
            );
        } else if (name in scope.variables) {
            cache.set(name, evaluate(scope.variables[name], scope));
        } else {
            throw new Error(`no variable ${name}`);
        }
    }
    return cache.get(name);
}

function evalAst(ast: Ast, scope: Scope, lambdas: Record<string, unknown>): unknown {
    switch (ast.kind) {
        case 'string':
        case 'number':
            return ast.value;
        case 'member': {
            const target = evalAst(ast.target, scope, lambdas);
            if (target instanceof Runtime) {
                return new Runtime(`${target.source}.${ast.property}`);
            }
            if (target && typeof target === 'object') {
                return (target as Record<string, unknown>)[ast.property];
            }
            throw new Error(`.${ast.property} of ${String(target)}`);
        }
        case 'index': {
            const target = evalAst(ast.target, scope, lambdas);
            const index = evalAst(ast.index, scope, lambdas);
            if (target instanceof Runtime) {
                return new Runtime(`${target.source}[${String(index)}]`);
            }
            return (target as Record<string, unknown>)[index as string];
        }
        case 'call':
            return call(ast, scope, lambdas);
    }
}

function str(v: unknown): string {
    return v instanceof Runtime ? v.toString() : typeof v === 'string' ? v : JSON.stringify(v);
}

function call(ast: Extract<Ast, { kind: 'call' }>, scope: Scope, lambdas: Record<string, unknown>): unknown {
    const lazy = ast.args;
    const args = () => lazy.map((a) => evalAst(a, scope, lambdas));
    const runLambda = (fn: Ast, ...values: unknown[]) => {
        if (fn.kind !== 'call' || fn.name !== 'lambda') {
            throw new Error('expected a lambda');
        }
        const names = fn.args.slice(0, -1).map((a) => (a as { value: string }).value);
        const bound = { ...lambdas };
        names.forEach((n, k) => {
            bound[n] = values[k];
        });
        return evalAst(fn.args[fn.args.length - 1]!, scope, bound);
    };
    const a = args;
    switch (ast.name) {
        case 'parameters':
            return scope.parameters[a()[0] as string];
        case 'variables':
            return variable(a()[0] as string, scope);
        case 'lambdavariables':
            return lambdas[a()[0] as string];
        case 'copyindex': {
            const [first, second] = a();
            if (typeof first === 'string') {
                return (scope.copyIndexes?.[first] ?? 0) + ((second as number | undefined) ?? 0);
            }
            return (scope.copyIndex ?? 0) + ((first as number | undefined) ?? 0);
        }
        case 'subscription':
            return {
                subscriptionId: scope.subscriptionId,
                id: `/subscriptions/${scope.subscriptionId}`,
                tenantId: scope.tenantId,
            };
        case 'tenant':
            return { tenantId: scope.tenantId };
        case 'environment':
            return publicCloud;
        case 'reference':
            return new Runtime(`${referenceName(a()[0])}`);
        case 'resourcegroup':
            return new Runtime('resourceGroup');
        case 'extensionresourceid':
        case 'resourceid':
        case 'subscriptionresourceid':
        case 'tenantresourceid':
            return a().map(str).join('/');
        case 'createobject': {
            const v = a();
            const out: Record<string, unknown> = {};
            for (let k = 0; k < v.length; k += 2) {
                out[v[k] as string] = v[k + 1];
            }
            return out;
        }
        case 'createarray':
            return a();
        case 'flatten':
            return (a()[0] as unknown[][]).flat();
        case 'union': {
            const v = a();
            if (Array.isArray(v[0])) {
                return [...new Set(v.flat())];
            }
            return Object.assign({}, ...v);
        }
        case 'concat': {
            const v = a();
            return Array.isArray(v[0]) ? v.flat() : v.map(str).join('');
        }
        case 'format': {
            const [fmt, ...rest] = a();
            return (fmt as string).replace(/\{\{|\}\}|\{(\d+)\}/g, (m, n: string | undefined) =>
                m === '{{' ? '{' : m === '}}' ? '}' : str(rest[Number(n)]),
            );
        }
        case 'join':
            return (a()[0] as unknown[]).map(str).join(a()[1] as string);
        case 'split':
            return (a()[0] as string).split(a()[1] as string);
        case 'replace':
            return (a()[0] as string).split(a()[1] as string).join(a()[2] as string);
        case 'trim':
            return (a()[0] as string).trim();
        case 'tolower':
            return (a()[0] as string).toLowerCase();
        case 'toupper':
            return (a()[0] as string).toUpperCase();
        case 'empty': {
            const v = a()[0];
            return (
                v === '' ||
                v === null ||
                v === undefined ||
                (Array.isArray(v) && v.length === 0) ||
                (typeof v === 'object' && !(v instanceof Runtime) && Object.keys(v as object).length === 0)
            );
        }
        case 'not':
            return !a()[0];
        case 'and':
            return a().every(Boolean);
        case 'or':
            return a().some(Boolean);
        case 'equals':
            return a()[0] === a()[1];
        case 'if':
            return evalAst(lazy[0]!, scope, lambdas)
                ? evalAst(lazy[1]!, scope, lambdas)
                : evalAst(lazy[2]!, scope, lambdas);
        case 'coalesce':
            return a().find((v) => v !== null && v !== undefined) ?? null;
        case 'startswith':
            return (a()[0] as string).startsWith(a()[1] as string);
        case 'endswith':
            return (a()[0] as string).endsWith(a()[1] as string);
        case 'contains': {
            const [c, x] = a();
            return typeof c === 'string'
                ? c.includes(x as string)
                : Array.isArray(c)
                  ? c.includes(x)
                  : (x as string) in (c as object);
        }
        case 'length':
            return (a()[0] as string | unknown[]).length;
        case 'substring': {
            const [s, start, len] = a() as [string, number, number | undefined];
            return len === undefined ? s.slice(start) : s.slice(start, start + len);
        }
        case 'take': {
            const [s, n] = a() as [string | unknown[], number];
            return s.slice(0, n);
        }
        case 'first': {
            const v = a()[0] as unknown[] | string;
            return v[0] ?? null;
        }
        case 'last': {
            const v = a()[0] as unknown[] | string;
            return v[v.length - 1] ?? null;
        }
        case 'max':
            return Math.max(...(a() as number[]));
        case 'min':
            return Math.min(...(a() as number[]));
        case 'int':
            return Number.parseInt(str(a()[0]), 10);
        case 'string':
            return str(a()[0]);
        case 'bool': {
            const v = a()[0];
            return typeof v === 'string' ? v.toLowerCase() === 'true' : Boolean(v);
        }
        case 'mul':
            return (a() as number[]).reduce((x, y) => x * y, 1);
        case 'add':
            return (a() as number[]).reduce((x, y) => x + y, 0);
        case 'sub':
            return (a()[0] as number) - (a()[1] as number);
        case 'greater':
            return (a()[0] as number) > (a()[1] as number);
        case 'greaterorequals':
            return (a()[0] as number) >= (a()[1] as number);
        case 'less':
            return (a()[0] as number) < (a()[1] as number);
        case 'lessorequals':
            return (a()[0] as number) <= (a()[1] as number);
        case 'base64tostring':
            return Buffer.from(a()[0] as string, 'base64').toString('utf8');
        case 'range': {
            const [start, count] = a() as [number, number];
            return Array.from({ length: count }, (_, k) => start + k);
        }
        case 'uniquestring':
            return fakeHash(a(), 13);
        case 'guid': {
            const h = fakeHash(a(), 32).padEnd(32, '0');
            return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
        }
        case 'filter': {
            const list = evalAst(lazy[0]!, scope, lambdas) as unknown[];
            return list.filter((x) => runLambda(lazy[1]!, x));
        }
        case 'map': {
            const list = evalAst(lazy[0]!, scope, lambdas) as unknown[];
            return list.map((x, k) => runLambda(lazy[1]!, x, k));
        }
        case 'tryget': {
            const [o, k] = a();
            return o instanceof Runtime
                ? new Runtime(`${o.source}.${String(k)}`)
                : ((o as Record<string, unknown> | null)?.[k as string] ?? null);
        }
        default:
            throw new Error(`armExpressions: ${ast.name}() is not supported`);
    }
}
