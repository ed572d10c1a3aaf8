/** What went wrong, in the words the report and the exit code use. */
export type ErrorKind = 'backend' | 'input' | 'unsupported' | 'internal';

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

/** A malformed or hostile input (a file, a flag): the scan's verdict is "error", with this message. */
export function invalid(message: string): never {
  throw new ShapguardError('input', message);
}

/** Something the scanner deliberately does not handle (a layer, a storage feature): verdict "unsupported". */
export function unsupported(message: string): never {
  throw new ShapguardError('unsupported', message);
}

/**
 * The two throwers with a fixed prefix naming where the problem was found ("HDF5: …", ".keras archive: …"),
 * for readers whose every message starts the same way. Assign them to names with an explicit
 * `(message: string) => never` type, so the compiler knows a call never returns.
 */
export function errorsIn(where: string): { invalid: (message: string) => never; unsupported: (message: string) => never } {
  return { invalid: (message) => invalid(`${where}: ${message}`), unsupported: (message) => unsupported(`${where}: ${message}`) };
}
