// The app's user-assigned managed identity: ARM (custom role), storage, Application Insights, Graph, and the bot's
// app id. A second identity that only writes the deployment package (issue 18, point 4: the identity that approves
// connections must not be able to replace the code that runs as it). Optionally a third, used only as the federated
// credential of the sign-in app registration, so the approver identity is never also a credential of another application.

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Name of the app identity.')
param name string

@description('Name of the deployment identity (writes the Flex Consumption deployment package).')
param deploymentIdentityName string

@description('Name of the sign-in identity; empty: none.')
param authIdentityName string = ''

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

resource deploymentIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: deploymentIdentityName
  location: location
  tags: tags
}

resource authIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = if (!empty(authIdentityName)) {
  name: empty(authIdentityName) ? '${name}-auth' : authIdentityName
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
output deploymentIdentityId string = deploymentIdentity.id
output deploymentPrincipalId string = deploymentIdentity.properties.principalId
output authIdentityId string = empty(authIdentityName) ? '' : authIdentity!.id
output authIdentityClientId string = empty(authIdentityName) ? '' : authIdentity!.properties.clientId
output authIdentityPrincipalId string = empty(authIdentityName) ? '' : authIdentity!.properties.principalId
