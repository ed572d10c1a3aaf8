#!/usr/bin/env node
// The `shapguard` command: the bundled CLI (built by `npm ci` through the prepare script).
import '../../dist/cli.mjs';
