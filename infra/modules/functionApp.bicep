// The Function App on Flex Consumption: FC1 plan, Linux, Node.js from functionAppConfig.runtime (on Flex the
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION settings are deprecated), the deployment package in a blob
// container that only a dedicated deployment identity may write (the app identity, which approves connections, reads it). azd finds the app by its azd-service-name tag.
// The app settings are not set here but by appSettings.bicep, after creation: PUBLIC_BASE_URL and the bot endpoint need
// the app's default host name, and a siteConfig.appSettings list here would replace the full set with a partial one on
// every re-provision, restarting the app without its settings until the second resource ran.

@description('Region.')
param location string

@description('Tags, including azd-service-name.')
param tags object

@description('Function App name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Resource ids of the user-assigned identities to attach.')
param identityIds string[]

@description('Resource id of the identity the platform reads and writes the deployment package with (not the app identity).')
param deploymentIdentityId string

@description('Primary blob endpoint of that account (https://<account>.blob.<suffix>/).')
param storageBlobEndpoint string

@description('Blob container of the deployment package.')
param deploymentContainerName string

@allowed(['22'])
@description('Node.js major version (Node 20 reached its end of life on 2026-04-30).')
param nodeVersion string

@allowed([512, 2048, 4096])
@description('Instance memory in MB.')
param instanceMemoryMB int

@description('Maximum instance count.')
param maximumInstanceCount int

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: toObject(identityIds, id => id, id => {})
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // HTTPS only, TLS 1.2 at least on the app and its SCM (deployment) endpoint, no FTP.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: deploymentIdentityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }
}

// No publishing with user names and passwords (FTP, or basic auth on the SCM site): azd deploys with an Entra token.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
