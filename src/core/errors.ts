/** What went wrong, in the words the report and the exit code use. */
export type ErrorKind = 'backend' | 'input' | 'unsupported' | 'budget' | 'internal';

/**
 * The one error type the engine throws on purpose: `kind` picks the verdict (input → "error",
 * unsupported → "unsupported") and the message goes to the report as is, so it must be precise.
 */
export class ShapguardError extends Error {
  override readonly name = 'ShapguardError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}
