// What every authenticated command needs: the server's CA info, a token
// signer on the AWS credential chain (loaded only now: commands that never
// sign stay fast), and the STS endpoint to sign for.
import { ClientError } from './client-error.js';
import type { IdentityTokenSigner } from './identity-token-signer.js';
import { ServerApi, type CaInfo } from './server-api.js';
import { chooseEndpoint } from './sts-endpoint-region.js';

export interface SignedSession {
  readonly api: ServerApi;
  readonly info: CaInfo;
  readonly signer: IdentityTokenSigner;
  readonly endpoint: string;
}

export async function openSignedSession(server: string, profile: string | undefined, output: { notice?: (line: string) => void; waiting?: (line: string) => void } = {}): Promise<SignedSession> {
  const api = new ServerApi(server, undefined, output.notice, output.waiting);
  const info = await api.caInfo();
  // The token will name the URL the user chose. A server that calls itself
  // something else would refuse it anyway; say why before signing anything.
  if (info.audience !== api.audience) {
    throw new ClientError('CLIENT_AUDIENCE_MISMATCH', `the server at ${api.audience} says its address is ${JSON.stringify(String(info.audience).slice(0, 200))}; sign-ins are made for one address, so use --server with that address (if you did not expect it, you may be talking to an impostor)`);
  }
  const { IdentityTokenSigner, profileRegion } = await import('./identity-token-signer.js');
  // Several allowed endpoints: sign for the one in the profile's region.
  const endpoint = chooseEndpoint(info.stsEndpoints, info.stsEndpoints.length > 1 ? await profileRegion(profile) : undefined);
  if (!endpoint) throw new ClientError('CLIENT_BAD_RESPONSE', 'the server allows no STS endpoint');
  return { api, info, signer: new IdentityTokenSigner(profile ? { profile } : {}), endpoint };
}
