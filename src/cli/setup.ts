import type { Command } from 'commander';
import { EXIT_OK } from '../errors.js';
import type { Runner } from './context.js';

export function defineSetup(program: Command, run: Runner): void {
  program
    .command('setup')
    .summary("make dataio's own schema and tables once, and let a role use them")
    .description(
      "Create the dataio schema and the tables dataio keeps its state in (the ledger of resumable imports, commit decisions, staging tables' registry, documents), " +
        'as a role that may (the database owner). With --grant, a role that may create nothing itself can then use them: parallel all-or-nothing imports, --import-id and documents. ' +
        'Other commands make these on first use when the role may; nothing else needs it. On Citus, run it against the coordinator.',
    )
    .option('--grant <role>', 'give this role USAGE and CREATE on the dataio schema and SELECT, INSERT, UPDATE, DELETE on its tables')
    .addHelpText('after', '\nExamples:\n  $ dataio setup --db postgresql://owner@db/app --grant app_loader')
    .action(
      run(async (ctx, flags) => {
        const f = flags as { grant?: string };
        const target = await ctx.target();
        const { setup } = await import('../setup.js');
        const r = await setup(target, { grant: f.grant });
        ctx.note(`the dataio schema and tables are ready in database ${r.database}${r.granted !== undefined ? `, for role ${r.granted} too` : ''}`);
        return EXIT_OK;
      }),
    );
}
