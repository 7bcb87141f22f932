/*
 * main.c -- the zdm command line: argument parsing, the plan, exit codes.
 *
 * Everything that touches the database lives in runner.c, status.c and
 * sequence.c (several plans, or a directory of them, in order); a
 * plan that cannot be read is refused here, before any connection, with
 * exit status 2 (bad usage or bad plan, nothing touched).
 */
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "plan_read.h"
#include "runner.h"
#include "sequence.h"
#include "sync.h"
#include "zdm.h"

static const char usage_text[] =
	"usage: zdm apply PLAN [options]       run the migration from where it stands to its end or the next gate\n"
	"       zdm apply PLAN... | DIR        several migrations in order (DIR: its *.plan files by name): each\n"
	"                                      not done is applied as above; stops at the first gate or failure\n"
	"       zdm status [PLAN] [--json]     where a migration stands (without PLAN: one line per migration\n"
	"                                      in the journal; --json: every migration in full)\n"
	"       zdm status PLAN... | DIR       one line per plan, in order, those not started included\n"
	"       zdm approve PLAN GATE          record an approval of GATE (who: --by, else $USER)\n"
	"       zdm rollback PLAN              undo every completed step, in reverse, before the point of no return\n"
	"       zdm log [MIGRATION]            the history recorded in git (refs/zdm/history), newest first\n"
	"       zdm history sync [PLAN]        record in git what the journal has and the history lacks\n"
	"       zdm sync PLAN [options]        (sync: cdc plans) apply the tables' changes until stopped;\n"
	"                                      see zdm sync --help\n"
	"       zdm --help | --version\n"
	"\n"
	"options:\n"
	"  --db CONNINFO         connection string or URI; default $DATABASE_URL, else libpq's PG* environment\n"
	"  --approve GATE[,GATE] approve these gates for this run (expand, backfill, verify, switch, contract)\n"
	"  --approve-all         approve every gate for this run\n"
	"  --wait                at a gate that needs approval, wait for `zdm approve` instead of exiting\n"
	"  --by NAME             who approves (default $USER)\n"
	"  --batch-size N        at most N rows per backfill batch (default: the plan's); batches\n"
	"                        also shrink to about 30 ms each when rows are slow to write\n"
	"  --pause DURATION      pause between backfill batches, e.g. 10ms (default: the plan's)\n"
	"  --jobs N              parallel backfill workers on disjoint page ranges (default 2)\n"
	"  --full-speed          the backfill never yields to application traffic (default: while\n"
	"                        other sessions are active, each worker rests 3x its last batch)\n"
	"  --sync-wait DURATION  (sync: cdc plans) how long a catch-up step waits for a zdm sync\n"
	"                        that is not running before it stops with exit 4 (default 60s)\n"
	"  --discard-new-rows    (rollback) drop a table the migration created even when it holds\n"
	"                        rows written since expand (default: the rollback stops there)\n"
	"  --json                machine-readable status\n"
	"  --history DIR         git repository for the record (created if missing); default: the\n"
	"                        repository holding the plan (for log and sync: the current directory's)\n"
	"\n"
	"exit status: 0 done (or already done), 1 failed (state kept in the journal), 2 bad usage or bad plan\n"
	"(nothing touched), 3 stopped safely and an operator is needed (lock retries exhausted, verification\n"
	"failed, rollback refused), 4 paused at a gate awaiting approval; several plans: 0 when all are done,\n"
	"else the status of the plan that stopped the sequence.  See docs/runbook.md.\n";

static const char sync_usage_text[] =
	"usage: zdm sync PLAN [--db CONNINFO] [--topic TOPIC] [--group ID] [--kafka KEY=VALUE ...]\n"
	"\n"
	"For a plan compiled with sync = cdc: reads the changes to the migration's tables and applies\n"
	"the plan's guarded statements, so that old-version and new-version writes reach both shapes.\n"
	"Runs until zdm apply asks it to stop (before contract), the migration is done or rolled back,\n"
	"or it gets SIGINT/SIGTERM; each batch of changes is applied in one transaction and acknowledged\n"
	"after it commits, so a restart replays from the last acknowledged change, harmlessly.  One\n"
	"zdm sync per migration: a second one is refused.  It reports into zdm.cdc every 200 ms and\n"
	"prints a progress line every 5 s.\n"
	"\n"
	"options:\n"
	"  --db CONNINFO      connection string or URI; default $DATABASE_URL, else libpq's PG*\n"
	"                     environment.  Native source: the role needs REPLICATION (or superuser) to\n"
	"                     read the plan's slot and to use its replication origin\n"
	"  --topic TOPIC      debezium source: the Kafka topic of the table's change events (required)\n"
	"  --group ID         debezium source: the consumer group whose committed offsets are the\n"
	"                     position (default zdm-MIGRATION)\n"
	"  --kafka KEY=VALUE  debezium source: a librdkafka setting, e.g. bootstrap.servers=HOST:9092;\n"
	"                     repeat as needed\n"
	"  --connector-slot SLOT  debezium source: the connector's replication slot (slot.name).  Its\n"
	"                     confirmed_flush_lsn says what Debezium has written to Kafka; without it a\n"
	"                     catch-up barrier cannot tell a drained topic from a lagging connector, and\n"
	"                     writes committed just before contract can be lost.  Give the connector\n"
	"                     heartbeat.interval.ms so that the slot moves while the table is quiet\n"
	"\n"
	"exit status: 0 stopped as asked (or nothing left to sync: the migration is done or rolled\n"
	"back), 1 failed (zdm.cdc.last_error says why; restart it) or another zdm sync runs for the\n"
	"migration, 2 bad usage, or a plan that is not a cdc plan.\n";

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "zdm: %s%s%s\nTry 'zdm --help'.\n", msg, arg ? " " : "",
	        arg ? arg : "");
	return ZDM_EXIT_USAGE;
}

static int
parse_count(const char *text, long min, long max, long *out)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_duration_ms(const char *text, long *out)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (end == text || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		*out = v;
	else if (strcmp(end, "s") == 0)
		*out = v * 1000;
	else if (strcmp(end, "min") == 0)
		*out = v * 60000;
	else
		return -1;
	return 0;
}

/* zdm sync PLAN [--db C] [--topic T] [--group G] [--kafka K=V ...] */
static int
sync_main(int argc, char **argv)
{
	zdm_sync_opts opts;
	const char **kafka;
	size_t nkafka = 0;
	zdm_plan *plan = NULL;
	char errbuf[1024];
	int a, rc;

	memset(&opts, 0, sizeof(opts));
	kafka = calloc((size_t)argc, sizeof(char *));
	if (kafka == NULL)
		return ZDM_EXIT_FAILED;
	for (a = 2; a < argc; a++) {
		const char *arg = argv[a];
		const char *val = a + 1 < argc ? argv[a + 1] : NULL;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(sync_usage_text, stdout);
			free(kafka);
			return ZDM_EXIT_OK;
		}
		if (strcmp(arg, "--db") == 0 || strcmp(arg, "--topic") == 0 ||
		    strcmp(arg, "--group") == 0 ||
		    strcmp(arg, "--connector-slot") == 0 ||
		    strcmp(arg, "--kafka") == 0) {
			if (val == NULL) {
				free(kafka);
				return usage_error("option needs a value:",
				                   arg);
			}
			a++;
			if (strcmp(arg, "--db") == 0)
				opts.conninfo = val;
			else if (strcmp(arg, "--topic") == 0)
				opts.topic = val;
			else if (strcmp(arg, "--group") == 0)
				opts.group_id = val;
			else if (strcmp(arg, "--connector-slot") == 0)
				opts.connector_slot = val;
			else if (strchr(val, '=') == NULL || val[0] == '=') {
				free(kafka);
				return usage_error(
					"--kafka takes KEY=VALUE, not", val);
			} else
				kafka[nkafka++] = val;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			free(kafka);
			return usage_error("unknown option", arg);
		} else if (opts.plan_path == NULL) {
			opts.plan_path = arg;
		} else {
			free(kafka);
			return usage_error("too many arguments:", arg);
		}
	}
	if (opts.plan_path == NULL) {
		free(kafka);
		return usage_error(
			"a plan file is needed, e.g. zdm sync plan.out", NULL);
	}
	opts.kafka_conf = kafka;
	if (zdm_plan_load(&plan, opts.plan_path, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "zdm: %s\n", errbuf);
		rc = ZDM_EXIT_USAGE;
	} else {
		rc = zdm_sync(plan, &opts);
	}
	zdm_plan_free(plan);
	free(kafka);
	return rc;
}

/* Split "a,b" into opts->approve (pointers into a strdup'd copy). */
static void
parse_gates(zdm_apply_opts *opts, char *list)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char **grown = realloc(opts->approve,
		                       (opts->napprove + 1) * sizeof(char *));

		if (grown == NULL)
			return;
		opts->approve = grown;
		opts->approve[opts->napprove++] = tok;
	}
}

int
main(int argc, char **argv)
{
	zdm_apply_opts opts;
	const char *cmd, **positional;
	char *gate_lists[16];
	size_t npos = 0, ngate_lists = 0, i;
	bool json = false;
	zdm_plan *plan = NULL;
	char errbuf[1024];
	int rc, a;
	long v;

	memset(&opts, 0, sizeof(opts));
	opts.pause_ms = -1;
	opts.jobs = 2;
	if (argc < 2)
		return usage_error("no command given", NULL);
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return ZDM_EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("zdm %s (plan format %d)\n", ZDM_VERSION,
		       ZDM_PLAN_FORMAT_VERSION);
		return ZDM_EXIT_OK;
	}
	if (strcmp(cmd, "sync") == 0)
		return sync_main(argc, argv);
	/* positional arguments are moved down to argv[2...] as they are
	 * found: never past the one being read, so nothing is overwritten */
	positional = (const char **)&argv[2];
	if (strcmp(cmd, "apply") != 0 && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "approve") != 0 && strcmp(cmd, "rollback") != 0 &&
	    strcmp(cmd, "log") != 0 && strcmp(cmd, "history") != 0)
		return usage_error("unknown command", cmd);

	for (a = 2; a < argc; a++) {
		const char *arg = argv[a];
		const char *val = a + 1 < argc ? argv[a + 1] : NULL;

		/* zdm apply --help: the one usage, which covers every command */
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage_text, stdout);
			for (i = 0; i < ngate_lists; i++)
				free(gate_lists[i]);
			return ZDM_EXIT_OK;
		}
		if (strcmp(arg, "--history") == 0) {
			if (val == NULL)
				return usage_error("option needs a value:",
				                   arg);
			opts.history_dir = val;
			a++;
			continue;
		}
		if (strcmp(arg, "--db") == 0 || strcmp(arg, "--approve") == 0 ||
		    strcmp(arg, "--by") == 0 ||
		    strcmp(arg, "--batch-size") == 0 ||
		    strcmp(arg, "--pause") == 0 || strcmp(arg, "--jobs") == 0 ||
		    strcmp(arg, "--sync-wait") == 0) {
			if (val == NULL)
				return usage_error("option needs a value:",
				                   arg);
			a++;
			if (strcmp(arg, "--db") == 0)
				opts.conninfo = val;
			else if (strcmp(arg, "--by") == 0)
				opts.approved_by = val;
			else if (strcmp(arg, "--approve") == 0) {
				if (ngate_lists ==
				    sizeof(gate_lists) / sizeof(gate_lists[0]))
					return usage_error(
						"too many --approve options",
						NULL);
				gate_lists[ngate_lists] = strdup(val);
				parse_gates(&opts, gate_lists[ngate_lists++]);
			} else if (strcmp(arg, "--batch-size") == 0) {
				if (parse_count(val, 1, 1000000,
				                &opts.batch_size) != 0)
					return usage_error(
						"--batch-size must be between 1 and 1000000, not",
						val);
			} else if (strcmp(arg, "--pause") == 0) {
				if (parse_duration_ms(val, &opts.pause_ms) != 0)
					return usage_error(
						"--pause takes a duration such as 10ms, 1s or 1min, not",
						val);
			} else if (strcmp(arg, "--sync-wait") == 0) {
				if (parse_duration_ms(
					    val, &opts.sync_wait_ms) != 0 ||
				    opts.sync_wait_ms <= 0)
					return usage_error(
						"--sync-wait takes a positive duration such as 5s or 10min, not",
						val);
			} else {
				if (parse_count(val, 1, 64, &v) != 0)
					return usage_error(
						"--jobs must be between 1 and 64, not",
						val);
				opts.jobs = (int)v;
			}
		} else if (strcmp(arg, "--approve-all") == 0) {
			opts.approve_all = true;
		} else if (strcmp(arg, "--full-speed") == 0) {
			opts.full_speed = true;
		} else if (strcmp(arg, "--discard-new-rows") == 0) {
			opts.discard_new_rows = true;
		} else if (strcmp(arg, "--wait") == 0) {
			opts.wait = true;
		} else if (strcmp(arg, "--json") == 0) {
			json = true;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			return usage_error("unknown option", arg);
		} else {
			argv[2 + npos++] = argv[a];
		}
	}

	if (opts.discard_new_rows && strcmp(cmd, "rollback") != 0)
		return usage_error(
			"--discard-new-rows is an option of zdm rollback",
			NULL);
	if (strcmp(cmd, "log") == 0) {
		if (npos > 1)
			return usage_error(
				"usage: zdm log [MIGRATION] [--history DIR]",
				NULL);
		rc = zdm_history_log(opts.history_dir, NULL,
		                     npos ? positional[0] : NULL);
		goto done;
	}
	if (strcmp(cmd, "history") == 0) {
		if (npos < 1 || strcmp(positional[0], "sync") != 0 || npos > 2)
			return usage_error("usage: zdm history sync [PLAN] "
			                   "[--db CONNINFO] [--history DIR]",
			                   NULL);
		if (npos == 2 && zdm_plan_load(&plan, positional[1], errbuf,
		                               sizeof(errbuf)) != 0) {
			fprintf(stderr, "zdm: %s\n", errbuf);
			rc = ZDM_EXIT_USAGE;
			goto done;
		}
		rc = zdm_history_sync(opts.conninfo, opts.history_dir,
		                      npos == 2 ? positional[1] : NULL,
		                      plan ? plan->migration : NULL);
		goto done;
	}
	/* several plans, or a directory of them: sequence.c */
	if (strcmp(cmd, "apply") == 0 &&
	    zdm_sequence_wanted(positional, npos)) {
		rc = zdm_sequence_apply(positional, npos, &opts);
		goto done;
	}
	if (strcmp(cmd, "status") == 0 &&
	    (zdm_sequence_wanted(positional, npos) || (npos == 0 && !json))) {
		rc = zdm_sequence_status(positional, npos, opts.conninfo, json);
		goto done;
	}
	if (strcmp(cmd, "status") == 0    ? npos > 1
	    : strcmp(cmd, "approve") == 0 ? npos != 2
	                                  : npos != 1)
		return usage_error(
			strcmp(cmd, "approve") == 0
				? "usage: zdm approve PLAN GATE"
			: strcmp(cmd, "status") == 0
				? "usage: zdm status [PLAN]"
				: "a plan file is needed, e.g. zdm apply plan.out",
			NULL);
	if (npos >= 1) {
		if (zdm_plan_load(&plan, positional[0], errbuf,
		                  sizeof(errbuf)) != 0) {
			fprintf(stderr, "zdm: %s\n", errbuf);
			rc = ZDM_EXIT_USAGE;
			goto done;
		}
		opts.plan_path = positional[0];
	}
	if (strcmp(cmd, "apply") == 0)
		rc = zdm_apply(plan, &opts);
	else if (strcmp(cmd, "rollback") == 0)
		rc = zdm_rollback(plan, &opts);
	else if (strcmp(cmd, "approve") == 0)
		rc = zdm_approve(plan, &opts, positional[1]);
	else
		rc = zdm_status(plan, opts.plan_path, opts.conninfo, json);
done:
	zdm_plan_free(plan);
	for (i = 0; i < ngate_lists; i++)
		free(gate_lists[i]);
	free(opts.approve);
	return rc;
}
