// The Function App on Flex Consumption: FC1 plan, Linux, Node.js from functionAppConfig.runtime (on Flex the
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION settings are deprecated), the deployment package in a blob
// container read with the user-assigned identity. azd finds the app by its azd-service-name tag.
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

@description('Resource id of the identity that reads the deployment package.')
param identityId string

@description('Primary blob endpoint of that account (https://<account>.blob.<suffix>/).')
param storageBlobEndpoint string

@description('Blob container of the deployment package.')
param deploymentContainerName string

@allowed(['20', '22'])
@description('Node.js major version.')
param nodeVersion string

@allowed([512, 2048, 4096])
@description('Instance memory in MB.')
param instanceMemoryMB int

@description('Maximum instance count.')
param maximumInstanceCount int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
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

resource site 'Microsoft.Web/sites@2024-04-01' = {
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
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
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

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
