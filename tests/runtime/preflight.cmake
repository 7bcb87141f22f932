# The preflight (runtime/preflight.c) against a real PostgreSQL that the test
# starts itself (tests/lib/pg.sh).  Label "sql", like tests/sql.
#   zdm_preflight_driver -- loads a plan and runs zdm_preflight on it
#                           (tests/runtime/preflight_driver.c)
add_executable(zdm_preflight_driver ${CMAKE_CURRENT_LIST_DIR}/preflight_driver.c)
target_link_libraries(zdm_preflight_driver PRIVATE zdm_core)

add_test(NAME runtime_preflight
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/preflight_test.sh
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# about 120 s alone; a loaded machine running the suite at -j2 took it
# past 300 s
set_tests_properties(runtime_preflight PROPERTIES
  LABELS sql
  TIMEOUT 420
  ENVIRONMENT "ZDMC=$<TARGET_FILE:zdmc>;ZDM_PREFLIGHT_DRIVER=$<TARGET_FILE:zdm_preflight_driver>")
