#!/usr/bin/env node
// Creates the self-signed certificate that the https emulators (ARM, Bot Connector, Graph) serve, for 127.0.0.1 and
// localhost. Node trusts it through NODE_EXTRA_CA_CERTS, which the test and demo scripts set: the Azure SDKs refuse to
// send a bearer token over http, so the emulators must speak https for the real clients to run unchanged.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', '.certs');
const certFile = path.join(dir, 'emulators.crt');
const keyFile = path.join(dir, 'emulators.key');

async function main() {
    if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
        const { X509Certificate } = require('node:crypto');
        const cert = new X509Certificate(fs.readFileSync(certFile));
        if (new Date(cert.validTo).getTime() - Date.now() > 7 * 24 * 3600 * 1000) {
            return;
        }
    }
    const selfsigned = require('selfsigned');
    const now = new Date();
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'pec-gate test emulators' }], {
        keySize: 2048,
        notBeforeDate: new Date(now.getTime() - 24 * 3600 * 1000),
        notAfterDate: new Date(now.getTime() + 365 * 24 * 3600 * 1000),
        extensions: [
            { name: 'basicConstraints', cA: true },
            { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
            { name: 'extKeyUsage', serverAuth: true },
            {
                name: 'subjectAltName',
                altNames: [
                    { type: 2, value: 'localhost' },
                    { type: 7, ip: '127.0.0.1' },
                ],
            },
        ],
    });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(certFile, pems.cert);
    fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
    console.log(`wrote ${path.relative(process.cwd(), certFile)}`);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
