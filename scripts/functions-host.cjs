'use strict';
/**
 * The Functions Node.js worker's part, for running the packaged app in a plain `node`: it answers
 * `require('@azure/functions-core')` as the worker does (the app's functions and hooks register with it), runs the
 * appStart hooks, and invokes a function through @azure/functions' own programming model (getInvocationModel →
 * getArguments → invokeFunction → getResponse), the path the worker takes. Used by bench/worker.cjs (cold start) and
 * scripts/code-cache-training.cjs (the package's code cache). Plain JavaScript: nothing but node runs before the app.
 */
const Module = require('node:module');

function installFunctionsHost() {
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

    return {
        /** The worker runs these before the first invocation (the app validates its settings there). */
        async runAppStart() {
            for (const hook of hooks.filter((h) => h.name === 'appStart')) {
                await hook.callback({ hookData: {}, appHookData: {}, functionAppDirectory: process.cwd() });
            }
        },
        /** One invocation of a registered function with its trigger's RPC data; resolves with its response and logs. */
        async invoke(functionName, inputData, triggerMetadata = {}) {
            const fn = registered.get(functionName);
            if (!fn || !programmingModel) {
                throw new Error(`${functionName} was not registered`);
            }
            const triggerName = Object.entries(fn.metadata.bindings).find(([, b]) => /Trigger$/.test(b.type))[0];
            const logs = [];
            const model = programmingModel.getInvocationModel({
                invocationId: globalThis.crypto.randomUUID(),
                metadata: fn.metadata,
                request: { inputData: [{ name: triggerName, data: inputData }], triggerMetadata },
                log: (level, category, message) => logs.push(`${level}: ${message}`),
            });
            const { context, inputs } = await model.getArguments();
            const result = await model.invokeFunction(context, inputs, fn.callback);
            return { response: await model.getResponse(context, result), logs };
        },
    };
}

module.exports = { installFunctionsHost };
