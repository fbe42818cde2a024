// The Event Grid event subscription that feeds the pecEvents function, on one watched subscription's system topic.
// Deployed by the postdeploy hook (scripts/hooks/postdeploy.sh), once per system topic, into the topic's resource
// group: Event Grid checks the destination function when the subscription is created, so the code must be deployed
// first. Re-running it updates the subscription in place.

@description('Name of the system topic (in this resource group).')
param systemTopicName string

@description('Resource id of the Function App.')
param functionAppResourceId string

@description('The Event Grid-triggered function, as registered in functions/pecEvents.ts (app.eventGrid).')
param eventGridFunctionName string = 'pecEvents'

@allowed(['AzureFunction', 'WebHook'])
@description('AzureFunction: Event Grid calls the function through ARM, no key to handle. WebHook: the extension endpoint with its system key (a fallback where the AzureFunction destination is not possible).')
param deliveryMode string = 'AzureFunction'

@description('With WebHook: the Function App host name.')
param functionAppHostName string = ''

@secure()
@description('With WebHook: the eventgrid_extension system key of the Function App.')
param eventGridExtensionKey string = ''

@description('Resource id of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Blob container for dead letters.')
param deadLetterContainerName string

@description('Name of the event subscription.')
param eventSubscriptionName string = 'pec-gate-pec-events'

@minValue(1)
@maxValue(30)
@description('Delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
@description('Minutes an event is retried before it is dead-lettered.')
param eventTimeToLiveInMinutes int = 1440

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

var functionDestination = {
  endpointType: 'AzureFunction'
  properties: {
    resourceId: '${functionAppResourceId}/functions/${eventGridFunctionName}'
    maxEventsPerBatch: 1
    preferredBatchSizeInKilobytes: 64
  }
}

var webhookDestination = {
  endpointType: 'WebHook'
  properties: {
    endpointUrl: 'https://${functionAppHostName}/runtime/webhooks/eventgrid?functionName=${eventGridFunctionName}&code=${eventGridExtensionKey}'
    maxEventsPerBatch: 1
    preferredBatchSizeInKilobytes: 64
  }
}

resource pecEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: eventSubscriptionName
  properties: {
    destination: deliveryMode == 'AzureFunction' ? functionDestination : webhookDestination
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      // Successful ARM writes and deletes; never reads, failures or cancellations. Actions (ResourceActionSuccess,
      // e.g. privateEndpointConnectionProxies/validate/action) change no connection state, and the app drops them,
      // so they are not subscribed: every delivery of them would be an invocation that does nothing.
      // test/infra/armTemplate.test.ts runs every combination through this filter and through the code's classifier.
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      // String filters are case-insensitive, and all of them must match.
      advancedFilters: [
        {
          // privateEndpointConnections/write|delete and privateEndpointConnectionProxies/write|delete (which of them
          // arrives on the server's side when someone creates a private endpoint is not documented; both count).
          operatorType: 'StringContains'
          key: 'data.operationName'
          values: [
            'privateEndpointConnection'
          ]
        }
        {
          // The registered resource kinds (infra/resourceKinds.json, generated from src/domain/resourceKinds.ts), by
          // the '/providers/{namespace}/{type}/' part of the subject: the code drops kinds it does not watch before
          // any I/O. One filter instead of a provider filter too, because Event Grid allows 25 values across all
          // advanced filters of a subscription.
          operatorType: 'StringContains'
          key: 'subject'
          values: map(loadJsonContent('resourceKinds.json').kinds, k => k.eventSubject)
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Shared keys are off on the account, so the topic dead-letters with its own identity (granted Storage Blob Data
    // Contributor on the account by main.bicep).
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = pecEvents.id
