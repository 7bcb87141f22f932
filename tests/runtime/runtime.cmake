# Integration tests of runtime parts that need a real PostgreSQL (each test
# starts its own, tests/lib/pg.sh).  Label "sql", like tests/sql.
#   zdm_backfill_driver -- runs one backfill step through zdm_backfill_run
#                          (tests/runtime/backfill_driver.c)
# zdm_traffic and zdm_plan_exec come from tests/sql/sql.cmake.
add_executable(zdm_backfill_driver ${CMAKE_CURRENT_LIST_DIR}/backfill_driver.c)
target_link_libraries(zdm_backfill_driver PRIVATE zdm_core)

add_test(NAME runtime_backfill
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/backfill_test.sh
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(runtime_backfill PROPERTIES
  LABELS sql
  TIMEOUT 300
  ENVIRONMENT "ZDMC=$<TARGET_FILE:zdmc>;ZDM_TRAFFIC=$<TARGET_FILE:zdm_traffic>;ZDM_PLAN_EXEC=$<TARGET_FILE:zdm_plan_exec>;ZDM_BACKFILL_DRIVER=$<TARGET_FILE:zdm_backfill_driver>")
