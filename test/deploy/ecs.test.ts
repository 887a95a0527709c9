// deploy/ecs, checked without AWS: the task definition and service are validated against the ECS
// API shapes the AWS SDK ships (RegisterTaskDefinition, CreateService), and the three files agree
// with each other and with the gateway: the gateway is the essential front container on the ports
// it really uses, the app is reachable on the task's loopback only, the drain fits stopTimeout,
// secrets come from Secrets Manager / SSM, logs go to CloudWatch, and the ALB target group has no
// stickiness and checks /readyz on the admin port.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { CreateServiceRequest$, RegisterTaskDefinitionRequest$ } from '@aws-sdk/client-ecs';
import type { ContainerDefinition, CreateServiceRequest, RegisterTaskDefinitionRequest } from '@aws-sdk/client-ecs';
import { loadConfig } from '../../src/config/config.js';
import { parseDurationMs } from '../../src/config/duration.js';
import { parseDockerfile } from './lib/dockerfile.js';
import { shapeProblems } from './lib/aws-shape.js';

const dir = new URL('../../deploy/ecs/', import.meta.url);
const json = <T>(file: string) => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as T;
const taskDef = json<RegisterTaskDefinitionRequest>('task-definition.json');
const service = json<CreateServiceRequest>('service.json');
const cfn = json<{ Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }>('alb-target-group.json');

const containers = taskDef.containerDefinitions ?? [];
const container = (name: string): ContainerDefinition => {
  const c = containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in task-definition.json`);
  return c;
};
const gateway = container('gateway');
const app = container('app');
const envOf = (c: ContainerDefinition) => Object.fromEntries((c.environment ?? []).map((e) => [e.name ?? '', e.value ?? '']));

/** The gateway's environment with each secret replaced by a plausible value, as ECS would inject it. */
function gatewayConfig() {
  const injected: Record<string, string> = {
    GATEWAY_SESSION_SECRET: 'x'.repeat(48),
    DATABASE_URL: 'postgres://session_gateway:pw@db.example.internal:5432/app',
    REDIS_URL: 'redis://redis.example.internal:6379',
  };
  const secrets = Object.fromEntries((gateway.secrets ?? []).map((s) => [s.name ?? '', injected[s.name ?? ''] ?? 'unexpected secret']));
  return loadConfig({ ...envOf(gateway), ...secrets });
}

const targetGroup = Object.values(cfn.Resources).find((r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup');
const tg = targetGroup?.Properties ?? {};
const tgAttributes = Object.fromEntries(((tg.TargetGroupAttributes ?? []) as Array<{ Key: string; Value: string }>).map((a) => [a.Key, a.Value]));

t.test('task-definition.json and service.json match the ECS API shapes', async (t) => {
  t.same(shapeProblems(taskDef, RegisterTaskDefinitionRequest$), [], 'RegisterTaskDefinition input');
  t.same(shapeProblems(service, CreateServiceRequest$), [], 'CreateService input');
  // The validator is not vacuous: a misspelt member and a wrong type are reported.
  const typo = structuredClone(taskDef) as unknown as { containerDefinitions: Array<Record<string, unknown>> };
  (typo.containerDefinitions[0] as Record<string, unknown>).essentail = true;
  (typo.containerDefinitions[0] as Record<string, unknown>).stopTimeout = '35';
  t.equal(shapeProblems(typo, RegisterTaskDefinitionRequest$).length, 2, 'a typo and a string number are caught');
  for (const [field, value] of [['family', taskDef.family], ['containerDefinitions', taskDef.containerDefinitions]] as const) t.ok(value, `required ${field} is set`);
  for (const c of containers) t.ok(c.name && c.image, `${c.name} has a name and an image`);
});

t.test('Fargate task in awsvpc mode, so the containers share one loopback', async (t) => {
  t.equal(taskDef.networkMode, 'awsvpc', 'awsvpc: the gateway reaches the app on 127.0.0.1');
  t.same(taskDef.requiresCompatibilities, ['FARGATE']);
  const fargate: Record<string, number[]> = { '256': [512, 1024, 2048], '512': [1024, 2048, 3072, 4096], '1024': [2048, 3072, 4096, 5120, 6144, 7168, 8192] };
  t.ok(fargate[taskDef.cpu ?? '']?.includes(Number(taskDef.memory)), `cpu ${taskDef.cpu} / memory ${taskDef.memory} is a Fargate size`);
  t.match(taskDef.executionRoleArn, /^arn:aws:iam::\d{12}:role\//, 'an execution role (it reads the secrets and writes the logs)');
});

t.test('the gateway is the essential front container, on the ports it really uses', async (t) => {
  const config = gatewayConfig();
  t.equal(containers[0]?.name, 'gateway', 'listed first');
  t.equal(gateway.essential, true, 'essential: the task stops if the gateway does');
  const ports = Object.fromEntries((gateway.portMappings ?? []).map((p) => [p.name ?? '', p.containerPort]));
  t.same(ports, { http: config.port, admin: config.adminPort }, 'proxy and admin ports as loadConfig reads them');
  for (const name of Object.keys(envOf(gateway))) {
    t.ok(readFileSync(new URL('../../src/config/config.ts', import.meta.url), 'utf8').includes(`'${name}'`), `${name} is read by src/config/config.ts`);
  }
  const dockerfile = parseDockerfile(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'));
  const imageCheck = dockerfile.stages.at(-1)?.instructions.find((i) => i.keyword === 'HEALTHCHECK');
  t.same(gateway.healthCheck?.command, ['CMD', ...(JSON.parse(/^CMD\s+(.*)$/.exec(imageCheck?.rest ?? '')?.[1] ?? '[]') as string[])], 'the container health check is the image HEALTHCHECK (/healthz on the admin port)');
});

t.test('the app is a second container reachable only through the gateway', async (t) => {
  const config = gatewayConfig();
  t.equal(config.upstream?.hostname, '127.0.0.1', 'the gateway forwards to the task loopback');
  t.same([envOf(app).HOST, envOf(app).PORT], ['127.0.0.1', config.upstream?.port], 'the app binds 127.0.0.1 on the port the gateway forwards to');
  t.notOk(app.portMappings?.length, 'the app maps no port: the load balancer cannot reach it');
  t.same(gateway.dependsOn, [{ containerName: 'app', condition: 'START' }], 'the gateway depends on the app: it starts after it and is stopped before it');
});

t.test('shutdown: stopTimeout covers the gateway drain', async (t) => {
  const config = gatewayConfig();
  const drain = (config.shutdownDelayMs + config.shutdownTimeoutMs) / 1000;
  t.ok((gateway.stopTimeout ?? 30) >= drain, `gateway stopTimeout (${gateway.stopTimeout}) ≥ delay + timeout (${drain})`);
  t.ok((gateway.stopTimeout ?? 30) <= 120, 'within the Fargate maximum of 120 s');
  const deregistration = Number(tgAttributes['deregistration_delay.timeout_seconds'] ?? 300);
  t.ok(deregistration * 1000 >= config.shutdownTimeoutMs, 'the ALB drains a target at least as long as the gateway lets requests finish');
});

t.test('secrets from Secrets Manager or SSM, never in the environment; logs to CloudWatch', async (t) => {
  const secretNames = (gateway.secrets ?? []).map((s) => s.name).sort();
  t.same(secretNames, ['DATABASE_URL', 'GATEWAY_SESSION_SECRET', 'REDIS_URL']);
  for (const s of gateway.secrets ?? []) t.match(s.valueFrom, /^arn:aws:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:(secret:|parameter\/)/, `${s.name} comes from Secrets Manager or SSM`);
  for (const c of containers) {
    for (const e of c.environment ?? []) t.notMatch(e.name, /SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL/, `${c.name}: ${e.name} is not a secret`);
    t.equal(c.logConfiguration?.logDriver, 'awslogs', `${c.name} logs to CloudWatch`);
    const options = c.logConfiguration?.options ?? {};
    t.ok(options['awslogs-group'] && options['awslogs-region'] && options['awslogs-stream-prefix'], `${c.name}: group, region and stream prefix set`);
  }
});

t.test('the ALB sends traffic to the gateway port, checks /readyz, and needs no stickiness', async (t) => {
  const config = gatewayConfig();
  t.ok(targetGroup, 'a target group in alb-target-group.json');
  const known = [
    'HealthCheckEnabled', 'HealthCheckIntervalSeconds', 'HealthCheckPath', 'HealthCheckPort', 'HealthCheckProtocol', 'HealthCheckTimeoutSeconds',
    'HealthyThresholdCount', 'IpAddressType', 'Matcher', 'Name', 'Port', 'Protocol', 'ProtocolVersion', 'Tags', 'TargetGroupAttributes',
    'TargetType', 'Targets', 'UnhealthyThresholdCount', 'VpcId',
  ];
  for (const key of Object.keys(tg)) t.ok(known.includes(key), `${key} is a TargetGroup property`);
  t.equal(tg.TargetType, 'ip', 'awsvpc tasks register by IP');
  t.equal(tg.Port, config.port, 'traffic goes to the gateway proxy port');
  t.equal(Number(tg.HealthCheckPort), config.adminPort, 'health from the admin port');
  t.equal(tg.HealthCheckPath, '/readyz', '/readyz: a task whose Redis is unreachable, or that is draining, leaves the rotation');
  t.equal(tgAttributes['stickiness.enabled'], 'false', 'no sticky sessions: any task serves any user');
  for (const key of Object.keys(tgAttributes)) {
    t.ok(/^(stickiness\.|deregistration_delay\.|load_balancing\.|slow_start\.|target_group_health\.|target_failover\.)/.test(key), `${key} is a target group attribute`);
  }

  const lb = service.loadBalancers ?? [];
  t.equal(lb.length, 1, 'the service registers one container with the load balancer');
  t.equal(lb[0]?.containerName, 'gateway', 'the gateway, never the app');
  t.equal(lb[0]?.containerPort, config.port, 'on the proxy port');
  t.equal(/targetgroup\/([^/]+)\//.exec(lb[0]?.targetGroupArn ?? '')?.[1], tg.Name, 'the target group of alb-target-group.json');
  t.equal(service.taskDefinition, taskDef.family, 'runs this task definition');
  t.ok((service.desiredCount ?? 0) >= 2, 'several tasks behind the ALB');
  t.equal(service.deploymentConfiguration?.minimumHealthyPercent, 100, 'deployments keep full capacity');
});

t.test('the environment of the task definition is a configuration the gateway accepts', async (t) => {
  t.doesNotThrow(() => gatewayConfig());
  const config = gatewayConfig();
  t.ok(config.publicUrl && config.trustedProxies, 'behind the ALB: public URL set and a trusted range for X-Forwarded-*');
  for (const cidr of config.trustedProxyCidrs) {
    t.ok(Number(cidr.split('/')[1] ?? 32) >= 24, `${cidr}: only the ALB's own small subnets, never the VPC (any task could forge X-Forwarded-For)`);
  }
  t.ok(parseDurationMs(envOf(gateway).GATEWAY_SHUTDOWN_DELAY ?? '') !== null, 'a shutdown delay is set');
});
