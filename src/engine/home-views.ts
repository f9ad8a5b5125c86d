import type { EngineContext } from './context.ts';

/** Someone who opened a front's home (Slack's App Home) recently, and the pipeline they picked there. */
export interface HomeViewer {
  team: string;
  user: string;
  openedAt: Date;
  picked: string | null;
}

/**
 * Who is looking at a home board, kept in the database so a change after a
 * restart (or in another flowops process) still reaches them. The front
 * decides what "recently" means and re-checks what each may see on publish.
 */
export class HomeViews {
  constructor(private readonly ctx: EngineContext) {}

  async homeOpened(team: string, user: string): Promise<HomeViewer> {
    const rows: Row[] = await this.ctx.db.query(
      `INSERT INTO home_views (team_id, user_id, opened_at) VALUES ($1, $2, now())
       ON CONFLICT (team_id, user_id) DO UPDATE SET opened_at = now()
       RETURNING team_id, user_id, opened_at, picked`,
      [team, user],
    );
    return viewer(rows[0]!);
  }

  /** Records the pipeline a viewer picked (null: none); it is shown first while they can see it. */
  async homePicked(team: string, user: string, pipeline: string | null): Promise<HomeViewer> {
    const rows: Row[] = await this.ctx.db.query(
      `INSERT INTO home_views (team_id, user_id, opened_at, picked) VALUES ($1, $2, now(), $3)
       ON CONFLICT (team_id, user_id) DO UPDATE SET picked = $3
       RETURNING team_id, user_id, opened_at, picked`,
      [team, user, pipeline],
    );
    return viewer(rows[0]!);
  }

  /** One viewer as now recorded (what they picked last), or null for someone who never opened their home. */
  async homeViewer(team: string, user: string): Promise<HomeViewer | null> {
    const rows: Row[] = await this.ctx.db.query(
      'SELECT team_id, user_id, opened_at, picked FROM home_views WHERE team_id = $1 AND user_id = $2',
      [team, user],
    );
    return rows[0] ? viewer(rows[0]) : null;
  }

  /** The people who opened their home within `withinMs`. */
  async homeViewers(withinMs: number): Promise<HomeViewer[]> {
    const rows: Row[] = await this.ctx.db.query(
      `SELECT team_id, user_id, opened_at, picked FROM home_views WHERE opened_at > now() - make_interval(secs => $1) ORDER BY opened_at DESC`,
      [withinMs / 1000],
    );
    return rows.map(viewer);
  }
}

interface Row {
  team_id: string;
  user_id: string;
  opened_at: Date;
  picked: string | null;
}

const viewer = (r: Row): HomeViewer => ({ team: r.team_id, user: r.user_id, openedAt: new Date(r.opened_at), picked: r.picked });
