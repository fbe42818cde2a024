// The Function App's application settings (all of them: this resource replaces the whole set) and, when an app
// registration is given, App Service Authentication in front of the web decision page.

@description('The Function App.')
param functionAppName string

@description('Every application setting, as name: value. Secure, since some are capabilities (the Workflows webhook URL with its sig=): a plain object would be kept in the deployment history.')
@secure()
param settings object

@description('Client id of the sign-in app registration; empty: no App Service Authentication (the web page then answers 401).')
param authClientId string = ''

@description('Client id of the managed identity whose federated credential proves the app registration; empty: implicit id_token flow, no credential.')
param authIdentityClientId string = ''

@description('Paths that must reach the app without a signed-in user.')
param authExcludedPaths string[] = []

resource site 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

var authEnabled = !empty(authClientId)
var useIdentityCredential = authEnabled && !empty(authIdentityClientId)

// WEBSITE_AUTH_AAD_ALLOWED_TENANTS: only our tenant's users get past sign-in. OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID:
// the platform proves the app registration with this managed identity's token instead of a client secret, when the
// registration's clientSecretSettingName names this setting (App Service docs, "Use a managed identity instead of a
// secret"); the app registration needs a federated credential for that identity (the postprovision hook adds it).
var authSettings = union(
  authEnabled ? { WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId } : {},
  useIdentityCredential ? { OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: authIdentityClientId } : {}
)

resource appsettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'appsettings'
  properties: union(settings, authSettings)
}

resource authsettings 'Microsoft.Web/sites/config@2025-03-01' = if (authEnabled) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: authExcludedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: union(
          {
            clientId: authClientId
            openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          },
          useIdentityCredential ? { clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID' } : {}
        )
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        // The page needs only who is signed in (x-ms-client-principal), never the user's tokens.
        enabled: false
      }
    }
  }
  dependsOn: [appsettings]
}
