'use strict';
/**
 * A stand-in for the Functions Node.js worker, for the cold-start benchmark: a fresh `node` runs this with the app's
 * entry files and one invocation to make. It answers `require('@azure/functions-core')` as the worker does, loads the
 * entries (registering their functions), runs their appStart hooks, then invokes one function through @azure/functions' own programming model
 * (getInvocationModel → getArguments → invokeFunction → getResponse), exactly the path the worker takes, and prints
 * the timings as JSON on stdout.
 *
 *   node bench/worker.cjs '<json: { entries: string[], functionName, inputData, triggerMetadata? }>'
 *
 * Plain JavaScript, so nothing but node itself runs before the app's code.
 */
const started = process.hrtime.bigint();
const Module = require('node:module');

const registered = new Map();
const hooks = [];
let programmingModel;
const core = {
    registerFunction(metadata, callback) {
        registered.set(metadata.name, { metadata, callback });
        return { dispose() {} };
    },
    setProgrammingModel(model) {
        programmingModel = model;
    },
    registerHook(name, callback) {
        hooks.push({ name, callback });
        return { dispose() {} };
    },
    log() {},
};
const load = Module._load;
Module._load = function (request, parent, isMain) {
    return request === '@azure/functions-core' ? core : load.call(this, request, parent, isMain);
};

const ms = (from, to = process.hrtime.bigint()) => Number(to - from) / 1e6;

async function main() {
    const job = JSON.parse(process.argv[2]);
    for (const entry of job.entries) {
        require(entry);
    }
    // The worker runs the app's start hooks before the first invocation (the app validates its settings there).
    for (const hook of hooks.filter((h) => h.name === 'appStart')) {
        await hook.callback({ hookData: {}, appHookData: {}, functionAppDirectory: process.cwd() });
    }
    const loaded = process.hrtime.bigint();
    const fn = registered.get(job.functionName);
    if (!fn || !programmingModel) {
        throw new Error(`${job.functionName} was not registered by ${job.entries.join(', ')}`);
    }
    const triggerName = Object.entries(fn.metadata.bindings).find(([, b]) => /Trigger$/.test(b.type))[0];
    const logs = [];
    const model = programmingModel.getInvocationModel({
        invocationId: globalThis.crypto.randomUUID(),
        metadata: fn.metadata,
        request: {
            inputData: [{ name: triggerName, data: job.inputData }],
            triggerMetadata: job.triggerMetadata ?? {},
        },
        log: (level, category, message) => logs.push(`${level}: ${message}`),
    });
    const { context, inputs } = await model.getArguments();
    const result = await model.invokeFunction(context, inputs, fn.callback);
    const response = await model.getResponse(context, result);
    const done = process.hrtime.bigint();
    process.stdout.write(
        JSON.stringify({
            loadMs: ms(started, loaded),
            invokeMs: ms(loaded, done),
            totalMs: ms(started, done),
            response: response.returnValue ?? null,
            errors: logs.filter((l) => /^(error|Error)/i.test(l)),
            logs: logs.length,
        }),
    );
}

main().then(
    // Keep-alive sockets and SDK timers would hold the process open; the invocation is over.
    () => process.exit(0),
    (err) => {
        process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
        process.exit(1);
    },
);
