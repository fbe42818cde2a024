import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { createPipelineFromOptions } from '@azure/core-rest-pipeline';
import { BlobServiceClient } from '@azure/storage-blob';
import { storageWithoutFormData, withoutFormData } from '../../src/http/pipeline';

describe('withoutFormData', () => {
    it("takes the form-data policy out of a pipeline, and out of a client's", () => {
        const names = (p: ReturnType<typeof createPipelineFromOptions>) => p.getOrderedPolicies().map((x) => x.name);
        const pipeline = createPipelineFromOptions({});
        expect(names(pipeline)).toContain('formDataPolicy');
        expect(withoutFormData(pipeline)).toBe(pipeline);
        expect(names(pipeline)).not.toContain('formDataPolicy');
        expect(names(pipeline)).toEqual(expect.arrayContaining(['defaultRetryPolicy', 'userAgentPolicy']));

        const client = { pipeline: createPipelineFromOptions({}) };
        withoutFormData(client);
        expect(names(client.pipeline)).not.toContain('formDataPolicy');
    });

    it("keeps Node's fetch implementation unloaded through a request on the core pipeline", () => {
        // Why the policy goes: with it, the first request loads undici. Checked in a fresh process, where nothing
        // else has touched the fetch globals yet.
        const script = `
            const http = require('node:http');
            const { createPipelineFromOptions, createPipelineRequest, createDefaultHttpClient } = require('@azure/core-rest-pipeline');
            const { withoutFormData } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'http', 'pipeline.ts'))});
            const server = http.createServer((req, res) => res.end('{}')).listen(0, '127.0.0.1', async () => {
                const pipeline = createPipelineFromOptions({});
                if (process.argv[1] === 'trim') withoutFormData(pipeline);
                const url = 'http://127.0.0.1:' + server.address().port + '/';
                await pipeline.sendRequest(createDefaultHttpClient(), createPipelineRequest({ url, allowInsecureConnection: true }));
                const loaded = process.moduleLoadList.some((m) => m.includes('undici'));
                server.close();
                process.stdout.write(String(loaded));
            });
        `;
        const run = (mode: string) => {
            const result = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script, mode], {
                cwd: path.join(__dirname, '..', '..'),
                encoding: 'utf8',
            });
            return result.stdout || result.stderr;
        };
        expect(run('keep')).toBe('true');
        expect(run('trim')).toBe('false');
    });
});

describe('storageWithoutFormData', () => {
    it("takes the form-data policy out of a blob container client's pipeline, and so out of the blob clients it makes", () => {
        // Azurite's published development account: nothing is sent, the clients are only built.
        const service = BlobServiceClient.fromConnectionString(
            'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1',
        );
        type WithContext = { storageClientContext: { pipeline: ReturnType<typeof createPipelineFromOptions> } };
        const names = (client: object) =>
            (client as WithContext).storageClientContext.pipeline.getOrderedPolicies().map((x) => x.name);
        const container = service.getContainerClient('anchors');
        expect(names(container)).toContain('formDataPolicy');
        expect(storageWithoutFormData(container)).toBe(container);
        expect(names(container)).not.toContain('formDataPolicy');
        const blob = container.getAppendBlobClient('heads/r.jsonl');
        expect(names(blob)).not.toContain('formDataPolicy');
        // The rest of the Storage pipeline stays: signing, its retry, its error details.
        expect(names(blob)).toEqual(
            expect.arrayContaining(['storageSharedKeyCredentialPolicy', 'storageRetryPolicy', 'deserializationPolicy']),
        );
    });

    it('leaves an object without a Storage pipeline alone', () => {
        const other = { storageClientContext: undefined };
        expect(storageWithoutFormData(other)).toBe(other);
    });
});
