import type { Procfile } from '../../db/entities.ts';

/** Parses a Procfile (`type: command` per line) as Heroku does; comments and blank lines are skipped. */
export function parseProcfile(text: string): Procfile {
  const procfile: Procfile = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line.trim());
    if (match) procfile[match[1]!] = match[2]!.trim();
  }
  return procfile;
}

/** The process types that run as dynos: every one but `release`, which runs once per release. */
export function processTypes(procfile: Procfile): string[] {
  return Object.keys(procfile).filter((type) => type !== 'release');
}
