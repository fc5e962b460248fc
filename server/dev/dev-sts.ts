// The embedded default's STS-compatible endpoint: verifies the SigV4
// signature for real against the dev credentials and answers
// GetCallerIdentity. Registered only in dev mode; production never has it.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex } from '../../protocol/identity-token.js';
import type { Clock } from '../clock.js';
import { SigV4FormatError, parseAmzDate, parseSigV4Authorization, sigV4Signature, signaturesEqual } from '../identity/sigv4.js';

/** The one identity the dev STS knows. */
export interface DevIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly arn: string;
  readonly account: string;
  readonly userId: string;
}

export const DEV_STS_PATH = '/dev/sts/';
export const DEV_STS_REGION = 'us-east-1';
/** AWS accepts a signature for 15 minutes either side of its clock. */
const AWS_SIGNATURE_WINDOW_MS = 15 * 60_000;

function stsError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ Error: { Code: code, Message: message, Type: 'Sender' }, RequestId: randomUUID() });
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Registers `POST /dev/sts/` (and without the slash) on `app`. */
export function registerDevSts(app: FastifyInstance, deps: { identity: DevIdentity; clock: Clock }): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: 4096 }, (_req, body, done) => done(null, body));
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const authorization = headerValue(request, 'authorization');
      if (!authorization) return stsError(reply, 403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
      let auth;
      try {
        auth = parseSigV4Authorization(authorization);
      } catch (err) {
        if (err instanceof SigV4FormatError) return stsError(reply, 400, 'IncompleteSignature', err.message);
        throw err;
      }
      if (auth.accessKeyId !== deps.identity.accessKeyId) return stsError(reply, 403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
      const amzDate = headerValue(request, 'x-amz-date') ?? '';
      const signedAt = parseAmzDate(amzDate);
      if (!signedAt || Math.abs(signedAt.getTime() - deps.clock.now().getTime()) > AWS_SIGNATURE_WINDOW_MS) {
        return stsError(reply, 403, 'SignatureDoesNotMatch', 'Signature expired or x-amz-date invalid');
      }
      if (auth.date !== amzDate.slice(0, 8) || auth.region !== DEV_STS_REGION || auth.service !== 'sts' || !auth.signedHeaders.includes('host')) {
        return stsError(reply, 403, 'SignatureDoesNotMatch', 'Credential scope or signed headers invalid');
      }
      const payloadHash = sha256Hex(raw);
      const declared = headerValue(request, 'x-amz-content-sha256');
      if (declared !== undefined && declared !== payloadHash) return stsError(reply, 400, 'XAmzContentSHA256Mismatch', 'content hash mismatch');
      const [path, query] = request.url.split('?', 2) as [string, string | undefined];
      if (query !== undefined) return stsError(reply, 400, 'InvalidParameterCombination', 'query strings are not supported here');
      const headers: Record<string, string> = {};
      for (const name of auth.signedHeaders) {
        const v = headerValue(request, name);
        if (v === undefined) return stsError(reply, 403, 'SignatureDoesNotMatch', `signed header ${name} missing`);
        headers[name] = v;
      }
      let expected: string;
      try {
        expected = sigV4Signature({ method: request.method, path, query: '', headers, signedHeaders: auth.signedHeaders, payloadHash, amzDate, region: auth.region, service: 'sts' }, deps.identity.secretAccessKey);
      } catch (err) {
        if (err instanceof SigV4FormatError) return stsError(reply, 403, 'SignatureDoesNotMatch', err.message);
        throw err;
      }
      if (!signaturesEqual(expected, auth.signature)) return stsError(reply, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
      const params = new URLSearchParams(raw.toString('utf8'));
      if (params.get('Action') !== 'GetCallerIdentity' || params.get('Version') !== '2011-06-15') {
        return stsError(reply, 400, 'InvalidAction', 'only GetCallerIdentity is served here');
      }
      return reply.type('application/json').send({
        GetCallerIdentityResponse: {
          GetCallerIdentityResult: { Account: deps.identity.account, Arn: deps.identity.arn, UserId: deps.identity.userId },
          ResponseMetadata: { RequestId: randomUUID() },
        },
      });
    };
    scope.post('/dev/sts', handler);
    scope.post(DEV_STS_PATH, handler);
  });
}
