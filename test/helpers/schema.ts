import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';

/** The published report schema (src/schema), compiled once. */
export const REPORT_SCHEMA = JSON.parse(readFileSync(resolve('src/schema/report.v2.schema.json'), 'utf8')) as object;
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(REPORT_SCHEMA);

/** Schema violations of a report, as "path: message" lines; empty when it conforms. */
export function reportSchemaErrors(report: unknown): string[] {
  return validate(report) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
}
