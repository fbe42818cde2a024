// The app's user-assigned managed identity: ARM (custom role), storage, Application Insights, Graph, and the bot's
// app id. Optionally a second identity used only as the federated credential of the sign-in app registration, so the
// identity that may approve connections is never also a credential of another application.

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Name of the app identity.')
param name string

@description('Name of the sign-in identity; empty: none.')
param authIdentityName string = ''

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

resource authIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (!empty(authIdentityName)) {
  name: empty(authIdentityName) ? '${name}-auth' : authIdentityName
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
output authIdentityId string = empty(authIdentityName) ? '' : authIdentity!.id
output authIdentityClientId string = empty(authIdentityName) ? '' : authIdentity!.properties.clientId
output authIdentityPrincipalId string = empty(authIdentityName) ? '' : authIdentity!.properties.principalId
