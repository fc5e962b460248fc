// POST /v1/certs/host (issue 12): an instance proves which instance it is
// with its instance identity role, the server asks EC2 what that instance
// is, and policy decides the host certificate — every name in it from EC2's
// answer, none from the request.
import type { FastifyInstance } from 'fastify';
import { fingerprintOf } from '../../protocol/ssh-public-key.js';
import type { RouteDeps } from '../app-deps.js';
import { CertificateAuthority } from '../ca/certificate-authority.js';
import { newTemplate } from '../ca/certificate-template.js';
import { epochSeconds } from '../clock.js';
import { PolicyError, RequestError, UnavailableError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { checkHostCaller, decideHost } from '../policy/host-policy.js';
import { issueRecorded, parseRequestKey } from './issue-certificate.js';
import { authenticateRequest, recordRefusal } from './request-identity.js';

interface HostCertificateBody {
  publicKey: string;
  region: string;
  nonce?: string;
}

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['publicKey', 'region'],
  properties: {
    publicKey: { type: 'string', minLength: 1, maxLength: 8192 },
    // Where the server looks the instance up; a wrong region only finds nothing.
    region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$', maxLength: 32 },
    nonce: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' },
  },
} as const;

export function registerHostCertificateRoute(app: FastifyInstance, deps: RouteDeps): void {
  const hostCa = deps.hostSigner ? new CertificateAuthority({ signer: deps.hostSigner }) : undefined;
  app.post<{ Body: HostCertificateBody }>('/v1/certs/host', { schema: { body: bodySchema }, config: { access: 'token' } }, async (request, reply) => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      if (identity.kind !== 'ec2-instance' || identity.instanceId === undefined) {
        throw new PolicyError('POLICY_NOT_INSTANCE_IDENTITY', 'host certificates are issued only to an instance identity role (aws:ec2-instance)');
      }
      if (!hostCa || !deps.instances) throw new RequestError('REQUEST_NO_HOST_CA', 'this server has no host CA', { status: 404 });
      const body = request.body;
      const publicKey = parseRequestKey(body.publicKey);
      const fingerprint = fingerprintOf(publicKey.blob);
      const krl = await deps.krl.current().catch((cause: unknown) => {
        throw new UnavailableError('UNAVAILABLE_STORE', 'the revocation list cannot be read now; no certificate was issued', { cause, retryAfterSeconds: 5 });
      });
      if (krl.revokedKeys.has(fingerprint)) throw new PolicyError('POLICY_HOST_KEY_REVOKED', `host key ${fingerprint} is revoked`);
      const rules = checkHostCaller(deps.policy.hostRules(), identity.accountId, body.region);
      const instance = await deps.instances.describe(identity.accountId, body.region, identity.instanceId);
      if (!instance) throw new PolicyError('POLICY_HOST_INSTANCE_UNKNOWN', `EC2 knows no instance ${identity.instanceId} in ${identity.accountId} ${body.region}`);
      const decision = decideHost(rules, instance);
      if (decision.ignoredNames.length > 0) request.log.warn({ instance: instance.instanceId, ignored: decision.ignoredNames }, 'names in the name tag left out of the host certificate');
      const response = await issueRecorded(deps, request, {
        ca: hostCa,
        identity,
        policyRule: 'hosts',
        template: newTemplate({
          kind: 'host',
          publicKey,
          callerArn: identity.arn,
          principals: decision.principals,
          ttlSeconds: decision.ttlSeconds,
          nowSeconds: epochSeconds(deps.clock),
          criticalOptions: {},
          extensions: {},
        }),
      });
      return reply.code(201).send(response);
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  });
}
