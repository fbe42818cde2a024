// The Azure Bot that posts and updates the approval cards: its app id is the Function App's user-assigned identity
// (msaAppType UserAssignedMSI, no secret), its messaging endpoint the app's /api/messages, with the Teams channel.

@description('Bot resource name (globally unique).')
param name string

@description('Tags.')
param tags object

@allowed(['F0', 'S1'])
@description('Pricing tier.')
param sku string

@description('Display name.')
param displayName string

@description('Messaging endpoint: https://<app>/api/messages.')
param endpoint string

@description('Client id of the user-assigned identity (the bot app id).')
param identityClientId string

@description('Resource id of the user-assigned identity.')
param identityResourceId string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: sku
  }
  properties: {
    displayName: displayName
    endpoint: endpoint
    msaAppType: 'UserAssignedMSI'
    msaAppId: identityClientId
    msaAppTenantId: tenant().tenantId
    msaAppMSIResourceId: identityResourceId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

output name string = bot.name
output id string = bot.id
