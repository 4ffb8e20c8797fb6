/** The official Huawei Cloud IAM SDK (`@huaweicloud/huaweicloud-sdk-iam`) as a test client. */
import { BasicCredentials, GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core';
import { IamClient } from '@huaweicloud/huaweicloud-sdk-iam/v3/public-api.js';

/** An IamClient signing with GlobalCredentials (AK/SK and the domain id), as Huawei's docs show. */
export function iamClient(endpoint: string, ak: string, sk: string, domainId: string, securityToken?: string): IamClient {
  let cred = new GlobalCredentials().withAk(ak).withSk(sk).withDomainId(domainId);
  if (securityToken !== undefined) cred = cred.withSecurityToken(securityToken);
  return build(endpoint, cred);
}

/**
 * An IamClient signing with BasicCredentials for a project: the SDK's keystoneShowProject and
 * keystoneUpdateProject take the project id from the credentials (`{project_id}` in their path).
 */
export function iamProjectClient(endpoint: string, ak: string, sk: string, projectId: string): IamClient {
  return build(endpoint, new BasicCredentials().withAk(ak).withSk(sk).withProjectId(projectId));
}

function build(endpoint: string, cred: BasicCredentials | GlobalCredentials): IamClient {
  const client = IamClient.newBuilder()
    .withCredential(cred)
    .withEndpoint(endpoint)
    // customUserAgent keeps the SDK from writing ~/.huaweicloud/application_id.
    .withOptions({ customUserAgent: 'ecs-console-tests' })
    .build();
  // The SDK logs every failed request, Authorization header included, through log4js to stdout.
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  (client as unknown as { hcClient: { httpClient: { _logger: unknown } } }).hcClient.httpClient._logger = quiet;
  return client;
}
