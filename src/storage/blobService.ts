/**
 * The one name the app takes from @azure/storage-blob, behind a lazy import (see auditAnchor.ts). A module of its own
 * so the bundle (scripts/package.ts, which takes the package's ES module build) keeps only what BlobServiceClient
 * reaches: a dynamic import of the package itself would keep all of it.
 */
export { BlobServiceClient } from '@azure/storage-blob';
