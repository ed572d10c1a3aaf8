import pkg from '../package.json' with { type: 'json' };

/** The tool's version as every report records it (bundled in, so it holds in workerd too). */
export const TOOL_VERSION: string = pkg.version;
