import { runRuntime } from './main.ts';
import type { RuntimeOptions } from './protocol.ts';

// The runtime as a program, started by flowops (runtime/client.ts): its options are its one argument, as JSON.
runRuntime(JSON.parse(process.argv[2] ?? '{}') as RuntimeOptions).catch((err: unknown) => {
  console.error(`flowops runtime: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
