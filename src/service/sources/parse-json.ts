import { HttpError } from '../errors.ts';

/** Parses a verified body as a JSON object; 400 with the source's name otherwise. */
export function parseJsonObject(body: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'bad-json', `${what} body is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HttpError(400, 'bad-payload', `${what} body is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Reads a nested field, or undefined. */
export function field(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const p of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

/** A nested string field, or a 400 naming it. */
export function requireString(value: unknown, what: string, ...path: string[]): string {
  const v = field(value, ...path);
  if (typeof v !== 'string' || v === '') throw new HttpError(400, 'bad-payload', `${what}: ${path.join('.')} is missing`);
  return v;
}

/** An optional string or number field as a string. */
export function optionalString(value: unknown, ...path: string[]): string | undefined {
  const v = field(value, ...path);
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}
