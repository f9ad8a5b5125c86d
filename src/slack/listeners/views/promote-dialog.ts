import type { App } from '@slack/bolt';
import { StaleRelease } from '../../../errors.ts';
import { promoteInstead } from '../actions/promote.ts';
import type { SlackDeps } from '../../context.ts';
import { handleView, type ViewValues } from './handle-view.ts';

function checkedApps(values: ViewValues): string[] {
  return (values.apps?.apps?.selected_options ?? []).map((o) => o.value).filter((v): v is string => typeof v === 'string');
}

/**
 * The promote dialog, submitted: promotes the release it was opened for to the
 * checked apps (or files the approval request), reading the state again: if
 * the app moved on while the dialog was open, the person is told so and
 * offered the new release; nothing else is promoted.
 */
export function register(app: App, deps: SlackDeps): void {
  handleView(
    app,
    deps,
    'promote_dialog',
    (values) => (checkedApps(values).length ? null : { apps: 'Check at least one app to promote to.' }),
    async ({ actor, meta: { p, a, v }, values, reply, follow }) => {
      const note = values.note?.note?.value ?? undefined;
      let shipped;
      try {
        shipped = await deps.engine.promote(actor, {
          pipeline: p,
          fromApp: a,
          ifVersion: v,
          toApps: checkedApps(values),
          note: note ?? undefined,
        });
      } catch (err) {
        if (!(err instanceof StaleRelease)) throw err;
        await reply(promoteInstead(err, p));
        return;
      }
      await follow(shipped);
    },
  );
}
