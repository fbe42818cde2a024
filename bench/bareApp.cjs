'use strict';
// The floor of the cold-start benchmark: a bare @azure/functions app with one trivial HTTP function.
const { app } = require('@azure/functions');

app.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ body: 'hello' }) });
