#!/usr/bin/env node
// The `flowops` CLI: a bundle of src/cli/main.ts, made again whenever a source it is made of changes.
import { bundled } from './bundled.js';

await import(await bundled('src/cli/main.ts', 'cli'));
