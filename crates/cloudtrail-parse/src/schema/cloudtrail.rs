//! The CloudTrail record schema, after the AWS "CloudTrail record contents" reference.
//!
//! Columns are named exactly as the JSON fields (camelCase) so that queries written for
//! Athena's and Databricks' CloudTrail tables carry over. Free-form objects
//! (`requestParameters`, `responseElements`, `additionalEventData`, `serviceEventDetails`,
//! `edgeDeviceDetails`, `webIdFederationData.attributes`) are kept as their exact JSON text;
//! objects whose keys are names users or IAM choose (tags, condition keys) are
//! `map<string, string>`.

use crate::columns::{Bool, Json, List, Str, StrMap, Timestamp};
use crate::json_struct;

json_struct! {
    /// `userIdentity.sessionContext.sessionIssuer`
    pub struct SessionIssuer {
        "type" => kind: Str,
        "principalId" => principal_id: Str,
        "arn" => arn: Str,
        "accountId" => account_id: Str,
        "userName" => user_name: Str,
    }
}

json_struct! {
    /// `userIdentity.sessionContext.webIdFederationData`
    pub struct WebIdFederationData {
        "federatedProvider" => federated_provider: Str,
        "attributes" => attributes: Json,
    }
}

json_struct! {
    /// `userIdentity.sessionContext.attributes`
    pub struct SessionAttributes {
        "creationDate" => creation_date: Str,
        "mfaAuthenticated" => mfa_authenticated: Str,
    }
}

json_struct! {
    /// `userIdentity.sessionContext`
    pub struct SessionContext {
        "sessionIssuer" => session_issuer: SessionIssuer,
        "webIdFederationData" => web_id_federation_data: WebIdFederationData,
        "attributes" => attributes: SessionAttributes,
        "sourceIdentity" => source_identity: Str,
        "ec2RoleDelivery" => ec2_role_delivery: Str,
        "assumedRoot" => assumed_root: Str,
    }
}

json_struct! {
    /// `userIdentity.onBehalfOf` (IAM Identity Center users)
    pub struct OnBehalfOf {
        "userId" => user_id: Str,
        "identityStoreArn" => identity_store_arn: Str,
    }
}

json_struct! {
    /// `userIdentity.inScopeOf` (credentials issued in the scope of a resource)
    pub struct InScopeOf {
        "sourceArn" => source_arn: Str,
        "sourceAccount" => source_account: Str,
        "issuerType" => issuer_type: Str,
        "credentialsIssuedTo" => credentials_issued_to: Str,
    }
}

json_struct! {
    /// `userIdentity`
    pub struct UserIdentity {
        "type" => kind: Str,
        "principalId" => principal_id: Str,
        "arn" => arn: Str,
        "accountId" => account_id: Str,
        "accessKeyId" => access_key_id: Str,
        "userName" => user_name: Str,
        "sessionContext" => session_context: SessionContext,
        "invokedBy" => invoked_by: Str,
        "identityProvider" => identity_provider: Str,
        "credentialId" => credential_id: Str,
        "onBehalfOf" => on_behalf_of: OnBehalfOf,
        "inScopeOf" => in_scope_of: InScopeOf,
    }
}

json_struct! {
    /// An element of `resources`
    pub struct Resource {
        "ARN" => arn: Str,
        "ARNPrefix" => arn_prefix: Str,
        "accountId" => account_id: Str,
        "type" => kind: Str,
    }
}

json_struct! {
    /// `addendum` (a late delivery or an update of an earlier event)
    pub struct Addendum {
        "reason" => reason: Str,
        "updatedFields" => updated_fields: Str,
        "originalRequestID" => original_request_id: Str,
        "originalEventID" => original_event_id: Str,
    }
}

json_struct! {
    /// `tlsDetails`
    pub struct TlsDetails {
        "tlsVersion" => tls_version: Str,
        "cipherSuite" => cipher_suite: Str,
        "clientProvidedHostHeader" => client_provided_host_header: Str,
    }
}

json_struct! {
    /// An element of `eventContext.tagContext.resourceTags`: one resource of the call and the
    /// tags the event data store was set to add.
    pub struct ResourceTags {
        "arn" => arn: Str,
        "tags" => tags: StrMap,
    }
}

json_struct! {
    /// `eventContext.tagContext`
    pub struct TagContext {
        "resourceTags" => resource_tags: List<ResourceTags>,
        "principalTags" => principal_tags: StrMap,
    }
}

json_struct! {
    /// `eventContext` (eventVersion 1.11, enriched events): the IAM global condition keys
    /// evaluated for the request (`requestContext`, by key name) and the selected tags.
    pub struct EventContext {
        "requestContext" => request_context: StrMap,
        "tagContext" => tag_context: TagContext,
    }
}

json_struct! {
    /// One CloudTrail record: the top-level columns of the CloudTrail table.
    pub struct CloudTrailRecord {
        "eventVersion" => event_version: Str,
        "userIdentity" => user_identity: UserIdentity,
        "eventTime" => event_time: Timestamp,
        "eventSource" => event_source: Str,
        "eventName" => event_name: Str,
        "awsRegion" => aws_region: Str,
        "sourceIPAddress" => source_ip_address: Str,
        "userAgent" => user_agent: Str,
        "errorCode" => error_code: Str,
        "errorMessage" => error_message: Str,
        "requestParameters" => request_parameters: Json,
        "responseElements" => response_elements: Json,
        "additionalEventData" => additional_event_data: Json,
        "requestID" => request_id: Str,
        "eventID" => event_id: Str,
        "readOnly" => read_only: Bool,
        "resources" => resources: List<Resource>,
        "eventType" => event_type: Str,
        "apiVersion" => api_version: Str,
        "managementEvent" => management_event: Bool,
        "recipientAccountId" => recipient_account_id: Str,
        "serviceEventDetails" => service_event_details: Json,
        "sharedEventID" => shared_event_id: Str,
        "vpcEndpointId" => vpc_endpoint_id: Str,
        "vpcEndpointAccountId" => vpc_endpoint_account_id: Str,
        "eventCategory" => event_category: Str,
        "addendum" => addendum: Addendum,
        "sessionCredentialFromConsole" => session_credential_from_console: Str,
        "edgeDeviceDetails" => edge_device_details: Json,
        "tlsDetails" => tls_details: TlsDetails,
        "eventContext" => event_context: EventContext,
    }
}

impl super::RecordFields for CloudTrailRecord {
    fn event_time(&self) -> &Timestamp {
        &self.event_time
    }
}
