/**
 * What a chat message follows: an operation, a pull request, a push to a
 * pipeline's deploy branch, an approval request (and the operation it becomes), a nudge, or one event worth a line of its own (GitHub
 * refused a status for good). Each has one message per channel, updated in place;
 * its key is how the fronts' status messages and an operation's cause name it.
 */
export type Subject =
  | { kind: 'op'; operation: number }
  | { kind: 'pr'; pipelineId: number; pr: number }
  | { kind: 'push'; pipelineId: number; sha: string }
  | { kind: 'event'; event: string }
  | { kind: 'approval'; request: number }
  | { kind: 'nudge'; nudge: number };

export function subjectKey(subject: Subject): string {
  switch (subject.kind) {
    case 'op':
      return `op:${subject.operation}`;
    case 'pr':
      return `pr:${subject.pipelineId}:${subject.pr}`;
    case 'push':
      return `push:${subject.pipelineId}:${subject.sha}`;
    case 'event':
      return `event:${subject.event}`;
    case 'approval':
      return `approval:${subject.request}`;
    case 'nudge':
      return `nudge:${subject.nudge}`;
  }
}

/** The subject a key names, or null for a key this version does not know. */
export function parseSubject(key: string): Subject | null {
  let m: RegExpExecArray | null;
  if ((m = /^op:(\d{1,10})$/.exec(key))) return { kind: 'op', operation: Number(m[1]) };
  if ((m = /^pr:(\d{1,10}):(\d{1,10})$/.exec(key))) return { kind: 'pr', pipelineId: Number(m[1]), pr: Number(m[2]) };
  if ((m = /^push:(\d{1,10}):([0-9a-f]{40}(?:[0-9a-f]{24})?)$/.exec(key))) return { kind: 'push', pipelineId: Number(m[1]), sha: m[2]! };
  if ((m = /^event:(\d{1,18})$/.exec(key))) return { kind: 'event', event: m[1]! };
  if ((m = /^approval:(\d{1,10})$/.exec(key))) return { kind: 'approval', request: Number(m[1]) };
  if ((m = /^nudge:(\d{1,10})$/.exec(key))) return { kind: 'nudge', nudge: Number(m[1]) };
  return null;
}
