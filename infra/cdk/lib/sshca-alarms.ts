// What pages an operator: CloudWatch alarms on an SNS topic. Dependency
// failures come from the server's own JSON log lines (metric filters on the
// `code` a failing request logs), traffic health from the load balancer's
// metrics — both exist without any agent in the task.
import { Aws, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface SshcaAlarmsProps {
  /** The server's log group (pino JSON lines). */
  readonly logGroup: logs.ILogGroup;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** "No successful issuance in this many minutes while certificate requests arrive". */
  readonly noIssuanceMinutes: number;
  readonly alarmEmail?: string;
}

/**
 * Log-derived metrics: name → filter on the server's JSON lines.
 * - A failing request logs `{"code":"UNAVAILABLE_…","msg":"request failed"}`
 *   (server/app.ts); `*` is CloudWatch's prefix wildcard, so every KMS code
 *   (key disabled, access denied, throttled…) counts as KMS unavailability.
 * - An issuance logs `{"msg":"certificate issued"}` (server/routes/issue-certificate.ts).
 * - Fastify logs `{"msg":"incoming request","req":{"url":…}}` for every request.
 */
export const LOG_METRICS = {
  StsUnavailable: logs.FilterPattern.stringValue('$.code', '=', 'UNAVAILABLE_STS*'),
  KmsUnavailable: logs.FilterPattern.stringValue('$.code', '=', 'UNAVAILABLE_KMS*'),
  KmsThrottled: logs.FilterPattern.stringValue('$.code', '=', 'UNAVAILABLE_KMS_THROTTLED'),
  // The audit record could not be written: nothing is issued (UNAVAILABLE_STORE),
  // or a refusal could not be recorded.
  AuditAppendFailed: logs.FilterPattern.any(
    logs.FilterPattern.stringValue('$.code', '=', 'UNAVAILABLE_STORE'),
    logs.FilterPattern.stringValue('$.msg', '=', 'refusal could not be recorded'),
    logs.FilterPattern.stringValue('$.msg', '=', 'refusal summary could not be recorded; its counts are kept'),
  ),
  // The chain head could not be anchored (server/audit/anchor-publisher.ts,
  // main.ts): the anchor store refuses or is unreachable, or the chain
  // disagrees with its anchors (records deleted or rewritten).
  AuditAnchorFailed: logs.FilterPattern.any(
    logs.FilterPattern.stringValue('$.msg', '=', 'audit anchor not published'),
    logs.FilterPattern.stringValue('$.msg', '=', 'audit anchoring refused: the chain disagrees with its published anchors'),
    logs.FilterPattern.stringValue('$.msg', '=', 'the audit chain disagrees with its published anchors; nothing new is anchored'),
  ),
  CertificatesIssued: logs.FilterPattern.stringValue('$.msg', '=', 'certificate issued'),
  CertificateRequests: logs.FilterPattern.all(
    logs.FilterPattern.stringValue('$.msg', '=', 'incoming request'),
    logs.FilterPattern.stringValue('$.req.url', '=', '/v1/certs/*'),
  ),
} as const;

/** Alarm name suffixes; the tests and docs/deploy.md refer to them. */
export const ALARMS = ['LoadBalancer5xxRate', 'StsUnavailable', 'KmsUnavailable', 'KmsThrottling', 'AuditAppendFailures', 'AuditAnchorFailures', 'NoIssuance', 'UnhealthyTargets'] as const;

/** The alarm topic (encrypted) and every alarm. */
export class SshcaAlarms extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: Record<(typeof ALARMS)[number], cloudwatch.Alarm>;
  readonly namespace: string;

  constructor(scope: Construct, id: string, props: SshcaAlarmsProps) {
    super(scope, id);
    this.namespace = `sshca/${Stack.of(this).stackName}`;

    // SNS encryption with a customer key: CloudWatch must be allowed to use it
    // to publish (the AWS managed aws/sns key cannot grant that).
    const topicKey = new kms.Key(this, 'TopicKey', { description: 'sshca alarm topic encryption', enableKeyRotation: true });
    topicKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }));
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'sshca alarms', masterKey: topicKey, enforceSSL: true });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    const logMetric = (name: keyof typeof LOG_METRICS, period: Duration): cloudwatch.Metric => {
      new logs.MetricFilter(this, `${name}Filter`, {
        logGroup: props.logGroup,
        filterPattern: LOG_METRICS[name],
        metricNamespace: this.namespace,
        metricName: name,
        metricValue: '1',
        unit: cloudwatch.Unit.COUNT,
      });
      return new cloudwatch.Metric({ namespace: this.namespace, metricName: name, statistic: cloudwatch.Stats.SUM, period });
    };
    const fiveMinutes = Duration.minutes(5);
    const window = Duration.minutes(props.noIssuanceMinutes);
    const alarm = (name: (typeof ALARMS)[number], metric: cloudwatch.IMetric, threshold: number, description: string, evaluationPeriods = 1, datapointsToAlarm = evaluationPeriods) =>
      new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods,
        datapointsToAlarm,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });

    const alb = props.loadBalancer.metrics;
    const requests = alb.requestCount({ period: fiveMinutes });
    const elb5xx = alb.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: fiveMinutes });
    const target5xx = alb.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period: fiveMinutes });
    const issued = logMetric('CertificatesIssued', window);
    const certRequests = logMetric('CertificateRequests', window);

    this.alarms = {
      LoadBalancer5xxRate: alarm(
        'LoadBalancer5xxRate',
        new cloudwatch.MathExpression({
          expression: '100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / MAX([FILL(requests, 0), 1])',
          usingMetrics: { requests, elb5xx, target5xx },
          period: fiveMinutes,
          label: '5xx responses, % of requests (load balancer metrics)',
        }),
        5,
        'More than 5% of responses were 5xx in 2 of the last 3 five-minute periods (ALB HTTPCode_ELB_5XX + HTTPCode_Target_5XX over RequestCount). The server log says which dependency failed (code).',
        3,
        2,
      ),
      StsUnavailable: alarm('StsUnavailable', logMetric('StsUnavailable', fiveMinutes), 5, 'Requests failed because STS was unreachable or throttling (log code UNAVAILABLE_STS*): nobody can log in.'),
      KmsUnavailable: alarm('KmsUnavailable', logMetric('KmsUnavailable', fiveMinutes), 5, 'Requests failed because KMS could not sign (log code UNAVAILABLE_KMS*: disabled key, access denied, throttling, network); docs/ca-keys.md "When KMS fails".'),
      KmsThrottling: alarm('KmsThrottling', logMetric('KmsThrottled', fiveMinutes), 1, 'KMS throttled kms:Sign after the SDK\'s retries (log code UNAVAILABLE_KMS_THROTTLED): the account\'s Sign quota is exhausted; raise it or spread the load.'),
      AuditAppendFailures: alarm('AuditAppendFailures', logMetric('AuditAppendFailed', fiveMinutes), 1, 'The audit store could not be written (log code UNAVAILABLE_STORE, or a refusal could not be recorded): no certificate is issued without its record.'),
      AuditAnchorFailures: alarm(
        'AuditAnchorFailures',
        logMetric('AuditAnchorFailed', fiveMinutes),
        1,
        'The audit chain head was not anchored in 2 of the last 3 five-minute periods: the anchor bucket refuses or is unreachable, or the chain disagrees with its anchors (AUDIT_TRUNCATED: records deleted). docs/runbook.md.',
        3,
        2,
      ),
      NoIssuance: alarm(
        'NoIssuance',
        new cloudwatch.MathExpression({
          // Requests for certificates arrived, and not one was issued.
          expression: 'IF(FILL(requests, 0) >= 3 AND FILL(issued, 0) == 0, 1, 0)',
          usingMetrics: { requests: certRequests, issued },
          period: window,
          label: `no issuance in ${props.noIssuanceMinutes} min while requests arrive`,
        }),
        1,
        `At least 3 certificate requests (POST /v1/certs/*) arrived in ${props.noIssuanceMinutes} minutes and none was issued (log messages "incoming request" and "certificate issued").`,
      ),
      UnhealthyTargets: alarm('UnhealthyTargets', props.targetGroup.metrics.unhealthyHostCount({ period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM }), 1, 'A task fails its /readyz health check (its signer or the audit store does not answer).', 2),
    };
    const notify = new actions.SnsAction(this.topic);
    for (const a of Object.values(this.alarms)) {
      a.addAlarmAction(notify);
      a.addOkAction(notify);
    }
  }
}

