# The zdm command itself (apply, rollback, approve, status) against a real
# PostgreSQL that each test starts (tests/lib/pg.sh), under traffic from
# both application versions (zdm_traffic, from tests/sql/sql.cmake) where it
# makes sense.  Label "sql", like tests/sql.  Each test's script says what it
# asserts; apply_lib.sh holds what they share.
# Generated for every example with a fixture (tests/sql/fixtures/EXAMPLE.sql
# next to plans/EXAMPLE.zdm; the contract is in tests/sql/README.md), labels
# "sql" and "matrix" (and "matrix_representative" for one example, see
# tests/sql/sql.cmake):
#   apply_e2e_EXAMPLE       apply_e2e.sh: end to end under traffic
#   apply_rollback_EXAMPLE  apply_rollback.sh: rollback from each boundary
#   apply_kill_EXAMPLE      apply_kill_random.sh: kill -9 at a random point
#                           (seeded, ZDM_KILL_SEED), then resume to done
#   apply_cdc_EXAMPLE       apply_cdc_example.sh: the example compiled with
#                           sync = cdc, under traffic, with zdm sync; skipped
#                           (exit 77) when the plan keeps no two shapes in
#                           sync (no backfill, no sync trigger)
# The rest, label "sql":
#   apply_kill_POINT        apply_kill.sh: kill -9 in expand, backfill, at a
#                           gate, in contract; then resume
#   apply_locks             apply_locks.sh: lock timeouts, retries, exit 3
#   apply_timeouts          apply_timeouts.sh: a role's statement_timeout does
#                           not reach zdm; the plan's halves batches, a hint
#   apply_unconvertible     apply_unconvertible.sh: a value using cannot convert
#                           fails no client write; verify names it
#   apply_concurrent        apply_concurrent.sh: one runner per migration
#   apply_claims            apply_claims.sh: one migration per table (two
#                           started at once, under traffic; four rounds)
#   apply_retry             apply_retry.sh: fix and try again after a
#                           rollback (attempts in the journal and in git),
#                           a journal of the previous version
#   apply_badplan           apply_badplan.sh: refused plans touch nothing
#   apply_status            apply_status.sh: approve, status, another plan
#   apply_partial           apply_partial.sh: a rollback stopped by a lock
#   apply_constraints       apply_constraints.sh: constraints (and add column's inline ones) on bad data
#   apply_sequence          apply_sequence.sh: plans/sequence/ in order with
#                           one zdm apply DIR; skips, gates, failures, status
#   apply_app               apply_app.sh: plans/app/, a shop's db/ folder of
#                           fifteen migrations, applied by one zdm apply
#                           DIR while the application is rolled forward
#                           one version per migration; schema, data, rerun,
#                           status
#   apply_autocommit        apply_autocommit.sh: autocommit steps (CREATE
#                           INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE):
#                           retries, a failed build, kill -9, rollback
#   apply_create_index      apply_create_index.sh: create index against a
#                           name taken, duplicates for a unique index, and a
#                           kill -9 during a build
#   apply_tables            apply_tables.sh: create table against a name
#                           taken and a rollback that would drop rows
#                           (--discard-new-rows); drop table hidden from the
#                           new version, refused while something depends
#                           on it
#   apply_sql               apply_sql.sh: sql (...) without reverse is a
#                           point of no return: rollback refused past it
#   apply_split             apply_split.sh: split table against a name
#                           taken, a key that is not unique, a NOT NULL
#                           column; each version's writes reach the other's
#                           shape, and rollback keeps them
#   apply_types             apply_types.sh: create type, add value, rename
#                           value and drop index against what the database
#                           holds; an unfit status stops verify; a
#                           migration of sql (...) alone
#   apply_rollback_versions_EXAMPLE  apply_rollback_versions.sh: rollback at
#                           the switch gate after both versions wrote,
#                           trigger and cdc (drop_column, set_not_null,
#                           drop_not_null)
set(zdm_apply_dir ${CMAKE_CURRENT_LIST_DIR})
set(zdm_apply_env
    "ZDM=$<TARGET_FILE:zdm>;ZDMC=$<TARGET_FILE:zdmc>;ZDM_TRAFFIC=$<TARGET_FILE:zdm_traffic>")

function(zdm_apply_test name script)
  add_test(NAME ${name}
           COMMAND bash ${zdm_apply_dir}/${script} ${ARGN}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES
    LABELS sql
    TIMEOUT 180
    ENVIRONMENT "${zdm_apply_env}")
endfunction()

file(GLOB zdm_apply_fixtures CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/tests/sql/fixtures/*.sql)
foreach(fixture IN LISTS zdm_apply_fixtures)
  get_filename_component(example ${fixture} NAME_WE)
  get_filename_component(fixture_name ${fixture} NAME)
  # EXAMPLE.old.sql, EXAMPLE.new.sql and EXAMPLE.check.sql belong to EXAMPLE.
  if(NOT fixture_name STREQUAL "${example}.sql" OR
     NOT EXISTS ${PROJECT_SOURCE_DIR}/plans/${example}.zdm)
    continue()
  endif()
  zdm_apply_test(apply_e2e_${example} apply_e2e.sh ${example})
  zdm_apply_test(apply_rollback_${example} apply_rollback.sh ${example})
  zdm_apply_test(apply_kill_${example} apply_kill_random.sh ${example})
  zdm_apply_test(apply_cdc_${example} apply_cdc_example.sh ${example})
  zdm_matrix_labels(${example} apply_e2e_${example} apply_rollback_${example}
                    apply_kill_${example} apply_cdc_${example})
  # exit 77: the plan keeps no two shapes in sync; the applier is slow
  # under a loaded machine (docs/performance.md)
  set_tests_properties(apply_cdc_${example} PROPERTIES
                       SKIP_RETURN_CODE 77 TIMEOUT 400)
endforeach()

foreach(point expand backfill gate contract)
  zdm_apply_test(apply_kill_${point} apply_kill.sh ${point})
endforeach()
zdm_apply_test(apply_locks apply_locks.sh)
zdm_apply_test(apply_timeouts apply_timeouts.sh)
zdm_apply_test(apply_unconvertible apply_unconvertible.sh)
zdm_apply_test(apply_unconvertible_cdc apply_unconvertible.sh cdc)
zdm_apply_test(apply_concurrent apply_concurrent.sh)
zdm_apply_test(apply_claims apply_claims.sh)
zdm_apply_test(apply_retry apply_retry.sh)
zdm_apply_test(apply_badplan apply_badplan.sh)
zdm_apply_test(apply_status apply_status.sh)
zdm_apply_test(apply_partial apply_partial.sh)
zdm_apply_test(apply_sequence apply_sequence.sh)
# three migrations under traffic, then five more runs of them
set_tests_properties(apply_sequence PROPERTIES TIMEOUT 400)
zdm_apply_test(apply_app apply_app.sh)
zdm_apply_test(apply_autocommit apply_autocommit.sh)
zdm_apply_test(apply_create_index apply_create_index.sh)
zdm_apply_test(apply_tables apply_tables.sh)
zdm_apply_test(apply_sql apply_sql.sh)
zdm_apply_test(apply_types apply_types.sh)
zdm_apply_test(apply_split apply_split.sh)
# rollback after both versions wrote, trigger and cdc: the examples of the
# operations whose rollback depends on what the new version wrote
foreach(example drop_column set_not_null drop_not_null add_check_using)
  zdm_apply_test(apply_rollback_versions_${example}
                 apply_rollback_versions.sh ${example})
endforeach()

# sync = cdc: zdm apply with zdm sync beside it (plans/split_name_cdc.zdm;
# same_merge: plans/merge_name_cdc.zdm);
# under traffic with kills: apply_cdc_EXAMPLE above
foreach(cdc_case same same_merge rollback nosync)
  zdm_apply_test(apply_cdc_${cdc_case} apply_cdc.sh ${cdc_case})
  # the applier is slow under a loaded machine (docs/performance.md)
  set_tests_properties(apply_cdc_${cdc_case} PROPERTIES TIMEOUT 400)
endforeach()

# non-owner application roles keep their privileges through the new version
zdm_apply_test(apply_grants apply_grants.sh)

# the constraint actions when data or schema are not what they need
zdm_apply_test(apply_constraints apply_constraints.sh)
set_tests_properties(apply_constraints PROPERTIES TIMEOUT 400)

# add constraint ... check ... using when its mapping or the sync mode fails
zdm_apply_test(apply_check_using apply_check_using.sh)
