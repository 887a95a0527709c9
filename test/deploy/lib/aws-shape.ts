// Validates a JSON document against an AWS API input shape, using the Smithy schema the AWS SDK
// ships for its own serialisation (e.g. RegisterTaskDefinitionRequest$ from @aws-sdk/client-ecs).
// It catches what `aws ecs register-task-definition --cli-input-json` would refuse before any call:
// unknown members (typos) and wrong JSON types. Enum values and required members are not in the
// schema the SDK ships, so the tests check those that matter themselves.
import { NormalizedSchema } from '@smithy/core/schema';

type SchemaRef = Parameters<typeof NormalizedSchema.of>[0];

export function shapeProblems(value: unknown, schema: SchemaRef, path = '$'): string[] {
  return check(value, NormalizedSchema.of(schema), path);
}

function kindOf(value: unknown): string {
  return Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
}

function check(value: unknown, ns: NormalizedSchema, path: string): string[] {
  if (ns.isDocumentSchema()) return [];
  if (ns.isStructSchema()) {
    if (kindOf(value) !== 'object') return [`${path}: expected an object, got ${kindOf(value)}`];
    const members = new Map(ns.structIterator());
    return Object.entries(value as Record<string, unknown>).flatMap(([key, v]) => {
      const member = members.get(key);
      if (!member) return [`${path}.${key}: not a member of ${ns.getName()} (known: ${[...members.keys()].join(', ')})`];
      return check(v, member, `${path}.${key}`);
    });
  }
  if (ns.isListSchema()) {
    if (!Array.isArray(value)) return [`${path}: expected an array, got ${kindOf(value)}`];
    return value.flatMap((v, i) => check(v, ns.getValueSchema(), `${path}[${i}]`));
  }
  if (ns.isMapSchema()) {
    if (kindOf(value) !== 'object') return [`${path}: expected a map, got ${kindOf(value)}`];
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => check(v, ns.getValueSchema(), `${path}.${k}`));
  }
  if (ns.isStringSchema()) return typeof value === 'string' ? [] : [`${path}: expected a string, got ${kindOf(value)}`];
  if (ns.isBooleanSchema()) return typeof value === 'boolean' ? [] : [`${path}: expected a boolean, got ${kindOf(value)}`];
  if (ns.isNumericSchema()) return typeof value === 'number' ? [] : [`${path}: expected a number, got ${kindOf(value)}`];
  return [`${path}: ${ns.getName()} is a shape this validator does not handle`];
}
