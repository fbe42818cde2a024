// Tests never talk to real Azure: make sure no developer's credentials or endpoints leak into a run.
for (const name of [
    'AZURE_CLIENT_SECRET',
    'AZURE_USERNAME',
    'AZURE_PASSWORD',
    'AZURE_FEDERATED_TOKEN_FILE',
    'MSI_ENDPOINT',
]) {
    delete process.env[name];
}
if (!process.env.NODE_EXTRA_CA_CERTS) {
    throw new Error('Run the tests with `npm test`: the https emulators need NODE_EXTRA_CA_CERTS=.certs/emulators.crt');
}
