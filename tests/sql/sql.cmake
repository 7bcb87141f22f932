# Integration tests against a real PostgreSQL that each test starts itself
# (tests/lib/pg.sh).  Two helper programs:
#   zdm_traffic    -- simulated application clients (tests/lib/traffic.c)
#   zdm_plan_exec  -- runs or undoes one phase of a plan (tests/sql/plan_exec.c)
# One ctest per example with a fixture: tests/sql/fixtures/EXAMPLE.sql next
# to plans/EXAMPLE.zdm.  Label "sql" (ctest -L sql, or -LE sql to skip them).
add_executable(zdm_traffic ${CMAKE_CURRENT_LIST_DIR}/../lib/traffic.c)
target_link_libraries(zdm_traffic PRIVATE PkgConfig::PQ Threads::Threads)

add_executable(zdm_plan_exec ${CMAKE_CURRENT_LIST_DIR}/plan_exec.c)
target_link_libraries(zdm_plan_exec PRIVATE zdm_core PkgConfig::PQ)

# The tests generated per fixture (these, and apply_*_EXAMPLE in
# tests/runtime/apply.cmake) carry the label "matrix"; those of one
# representative example also "matrix_representative", which is all of the
# matrix the ASan phase of tests/run.sh runs (tests/sql/README.md).
# split_name: a backfill, a sync trigger, a rename, a NOT NULL column.
set(ZDM_MATRIX_REPRESENTATIVE split_name CACHE STRING
    "the example whose generated tests the ASan phase runs")

# zdm_matrix_labels EXAMPLE TEST...: the labels of tests generated for EXAMPLE
function(zdm_matrix_labels example)
  set(labels "sql;matrix")
  if(example STREQUAL ZDM_MATRIX_REPRESENTATIVE)
    list(APPEND labels matrix_representative)
  endif()
  set_tests_properties(${ARGN} PROPERTIES LABELS "${labels}")
endfunction()

file(GLOB zdm_sql_fixtures CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_LIST_DIR}/fixtures/*.sql)
foreach(fixture IN LISTS zdm_sql_fixtures)
  get_filename_component(example ${fixture} NAME_WE)
  get_filename_component(fixture_name ${fixture} NAME)
  # EXAMPLE.old.sql, EXAMPLE.new.sql and EXAMPLE.check.sql belong to EXAMPLE.
  if(NOT fixture_name STREQUAL "${example}.sql")
    continue()
  endif()
  if(NOT EXISTS ${PROJECT_SOURCE_DIR}/plans/${example}.zdm)
    message(WARNING "tests/sql/fixtures/${fixture_name} has no plans/${example}.zdm")
    continue()
  endif()
  add_test(NAME sql_${example}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_example.sh ${example}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(sql_${example} PROPERTIES
    TIMEOUT 180
    ENVIRONMENT "ZDMC=$<TARGET_FILE:zdmc>;ZDM_TRAFFIC=$<TARGET_FILE:zdm_traffic>;ZDM_PLAN_EXEC=$<TARGET_FILE:zdm_plan_exec>")
  zdm_matrix_labels(${example} sql_${example})
endforeach()
