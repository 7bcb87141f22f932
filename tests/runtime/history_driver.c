/*
 * history_driver.c -- reads the history back with libgit2, for
 * history_test.sh, which checks every assertion a second time with the git
 * CLI; and records through zdm_history_record, for the concurrency test.
 *
 *   zdm_history_driver log REPO
 *       every commit of refs/zdm/history, newest first, one a line:
 *       ID<TAB>PARENTS<TAB>MIGRATION<TAB>STATE<TAB>SUBJECT
 *       (MIGRATION and STATE from the Zdm-* trailers, "-" when absent)
 *   zdm_history_driver show REPO PATH
 *       PATH's content in the tip's tree (exit 1 when it is not there)
 *   zdm_history_driver ls REPO
 *       the names at the root of the tip's tree, one a line
 *   zdm_history_driver record REPO CONNINFO MIGRATION N
 *       N records of MIGRATION's state through zdm_history_record (with
 *       REPO as --history), messages "MIGRATION: record I of N"
 *
 * REPO is opened as given (a work tree or a bare repository).  Exit 0, or 1
 * with a message on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "history.h"

static int
driver_fail(const char *what)
{
	const git_error *e = git_error_last();

	fprintf(stderr, "zdm_history_driver: %s: %s\n", what,
	        e && e->message ? e->message : "failed");
	return 1;
}

static const char *
driver_trailer(const git_message_trailer_array *t, const char *key)
{
	size_t i;

	for (i = 0; i < t->count; i++)
		if (strcmp(t->trailers[i].key, key) == 0)
			return t->trailers[i].value;
	return "-";
}

static int
driver_log(git_repository *repo)
{
	git_revwalk *walk = NULL;
	git_commit *commit = NULL;
	git_oid id;
	char hex[GIT_OID_HEXSZ + 1];
	int rc = 1, next;

	if (git_revwalk_new(&walk, repo) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) <
	            0 ||
	    git_revwalk_push_ref(walk, ZDM_HISTORY_REF) < 0) {
		rc = driver_fail("cannot walk " ZDM_HISTORY_REF);
		goto cleanup;
	}
	while ((next = git_revwalk_next(&id, walk)) == 0) {
		git_message_trailer_array trailers;

		if (git_commit_lookup(&commit, repo, &id) < 0) {
			rc = driver_fail("cannot read a commit");
			goto cleanup;
		}
		memset(&trailers, 0, sizeof(trailers));
		if (git_message_trailers(&trailers,
		                         git_commit_message(commit)) < 0) {
			rc = driver_fail("cannot read trailers");
			goto cleanup;
		}
		git_oid_tostr(hex, sizeof(hex), &id);
		printf("%s\t%u\t%s\t%s\t%s\n", hex,
		       git_commit_parentcount(commit),
		       driver_trailer(&trailers, "Zdm-Migration"),
		       driver_trailer(&trailers, "Zdm-State"),
		       git_commit_summary(commit));
		git_message_trailer_array_free(&trailers);
		git_commit_free(commit);
		commit = NULL;
	}
	if (next != GIT_ITEROVER) {
		rc = driver_fail("cannot walk " ZDM_HISTORY_REF);
		goto cleanup;
	}
	rc = 0;
cleanup:
	git_commit_free(commit);
	git_revwalk_free(walk);
	return rc;
}

static int
driver_tip_tree(git_tree **out, git_repository *repo)
{
	git_oid tip;
	git_commit *commit = NULL;
	int rc;

	if (git_reference_name_to_id(&tip, repo, ZDM_HISTORY_REF) < 0 ||
	    git_commit_lookup(&commit, repo, &tip) < 0)
		return driver_fail("cannot read the tip of " ZDM_HISTORY_REF);
	rc = git_commit_tree(out, commit) < 0
	             ? driver_fail("cannot read the tip's tree")
	             : 0;
	git_commit_free(commit);
	return rc;
}

static int
driver_show(git_repository *repo, const char *path)
{
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	int rc = 1;

	if (driver_tip_tree(&tree, repo) != 0)
		goto cleanup;
	if (git_tree_entry_bypath(&entry, tree, path) < 0 ||
	    git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		fprintf(stderr,
		        "zdm_history_driver: %s: not in the tip's tree\n",
		        path);
		goto cleanup;
	}
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) < 0) {
		rc = driver_fail("cannot read the blob");
		goto cleanup;
	}
	fwrite(git_blob_rawcontent(blob), 1, (size_t)git_blob_rawsize(blob),
	       stdout);
	rc = 0;
cleanup:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	return rc;
}

static int
driver_ls(git_repository *repo)
{
	git_tree *tree = NULL;
	size_t i;

	if (driver_tip_tree(&tree, repo) != 0)
		return 1;
	for (i = 0; i < git_tree_entrycount(tree); i++)
		printf("%s\n",
		       git_tree_entry_name(git_tree_entry_byindex(tree, i)));
	git_tree_free(tree);
	return 0;
}

static int
driver_record(const char *repo_path, const char *conninfo,
              const char *migration, long n)
{
	zdm_history *history = NULL;
	zdm_error err;
	PGconn *conn;
	char message[256];
	long i;
	int rc = 1;

	zdm_error_clear(&err);
	conn = zdm_conn_open(conninfo, "history driver", NULL, &err);
	if (conn == NULL ||
	    zdm_history_open(&history, repo_path, NULL, &err) != 0)
		goto cleanup;
	for (i = 1; i <= n; i++) {
		snprintf(message, sizeof(message), "%s: record %ld of %ld",
		         migration, i, n);
		if (zdm_history_record(history, conn, migration, message,
		                       &err) != 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc != 0)
		zdm_error_print(&err, stderr);
	zdm_history_close(history);
	if (conn != NULL)
		PQfinish(conn);
	return rc;
}

int
main(int argc, char **argv)
{
	git_repository *repo = NULL;
	int rc;

	if (argc == 6 && strcmp(argv[1], "record") == 0)
		return driver_record(argv[2], argv[3], argv[4],
		                     strtol(argv[5], NULL, 10));
	if (argc < 3 ||
	    (strcmp(argv[1], "log") != 0 && strcmp(argv[1], "show") != 0 &&
	     strcmp(argv[1], "ls") != 0) ||
	    (strcmp(argv[1], "show") == 0) != (argc == 4)) {
		fprintf(stderr,
		        "usage: zdm_history_driver log REPO | show REPO PATH | ls REPO |"
		        " record REPO CONNINFO MIGRATION N\n");
		return 2;
	}
	git_libgit2_init();
	if (git_repository_open_ext(&repo, argv[2],
	                            GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = driver_fail(argv[2]);
		goto cleanup;
	}
	if (strcmp(argv[1], "log") == 0)
		rc = driver_log(repo);
	else if (strcmp(argv[1], "show") == 0)
		rc = driver_show(repo, argv[3]);
	else
		rc = driver_ls(repo);
cleanup:
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}
