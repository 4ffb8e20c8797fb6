/** The official Huawei Cloud Node SDK as a test client. */
import { Agent as HttpsAgent } from 'node:https';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core';
import {
  EcsClient, GetServerRemoteConsoleOption, ListServersDetailsRequest, ShowServerRemoteConsoleRequest,
  ShowServerRemoteConsoleRequestBody, ShowServerRequest,
} from '@huaweicloud/huaweicloud-sdk-ecs';

/**
 * An EcsClient; `ca` trusts a test certificate authority for https endpoints; `securityToken`
 * makes the AK/SK temporary credentials (sent as X-Security-Token).
 */
export function sdkClient(endpoint: string, ak: string, sk: string, projectId: string, ca?: Buffer, securityToken?: string): EcsClient {
  let cred = new BasicCredentials().withAk(ak).withSk(sk).withProjectId(projectId);
  if (securityToken !== undefined) cred = cred.withSecurityToken(securityToken);
  const client = EcsClient.newBuilder()
    .withCredential(cred)
    .withEndpoint(endpoint)
    // customUserAgent keeps the SDK from writing ~/.huaweicloud/application_id.
    .withOptions({ customUserAgent: 'ecs-console-tests', ...(ca ? { axiosRequestConfig: { httpsAgent: new HttpsAgent({ ca }) } } : {}) })
    .build();
  // The SDK logs every failed request, Authorization header included, through log4js to stdout.
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  (client as unknown as { hcClient: { httpClient: { _logger: unknown } } }).hcClient.httpClient._logger = quiet;
  return client;
}

export interface SdkError {
  httpStatusCode: number;
  errorCode: string;
  errorMsg: string;
  requestId: string;
}

export async function remoteConsole(client: EcsClient, serverId: string): Promise<{ remote_console: { type: string; protocol: string; url: string } }> {
  const req = new ShowServerRemoteConsoleRequest()
    .withServerId(serverId)
    .withBody(new ShowServerRemoteConsoleRequestBody().withRemoteConsole(new GetServerRemoteConsoleOption().withProtocol('vnc').withType('novnc')));
  return client.showServerRemoteConsole(req) as Promise<any>;
}

export async function showServer(client: EcsClient, serverId: string): Promise<any> {
  return client.showServer(new ShowServerRequest().withServerId(serverId));
}

export async function listServers(client: EcsClient, limit?: number, offset?: number): Promise<any> {
  let r = new ListServersDetailsRequest();
  if (limit !== undefined) r = r.withLimit(limit);
  if (offset !== undefined) r = r.withOffset(offset);
  return client.listServersDetails(r);
}

/** Runs an SDK call expected to fail and returns the SDK's error object. */
export async function sdkFailure(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    return e as SdkError;
  }
  throw new Error('expected the SDK call to fail');
}
