// The Event Grid system topic of one subscription's resource events (Microsoft.Resources.Subscriptions: the
// ResourceWriteSuccess/DeleteSuccess/ActionSuccess events of every ARM write, PEC writes included). Global, like its
// source. Its system-assigned identity dead-letters into the app's storage, where shared keys are off.

@description('Topic name.')
param name string

@description('Tags.')
param tags object

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

output id string = topic.id
output principalId string = topic.identity.principalId
