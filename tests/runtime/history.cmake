# The record of every run in git (runtime/history.c), against a real
# PostgreSQL that each test starts (tests/lib/pg.sh) and repositories in temp
# dirs.  Label "sql", like tests/sql.
#   zdm_history_driver -- reads refs/zdm/history back with libgit2 (the
#                         tests read it with the git CLI too) and records
#                         through zdm_history_record
#                         (tests/runtime/history_driver.c)
#   history_CASE       -- history_test.sh CASE; the script says what each
#                         case asserts
add_executable(zdm_history_driver ${CMAKE_CURRENT_LIST_DIR}/history_driver.c)
target_link_libraries(zdm_history_driver PRIVATE zdm_core PkgConfig::GIT2)

foreach(case full approve rollback crash concurrent fail secret)
  add_test(NAME history_${case}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/history_test.sh ${case}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(history_${case} PROPERTIES
    LABELS sql
    TIMEOUT 180
    ENVIRONMENT "ZDM=$<TARGET_FILE:zdm>;ZDMC=$<TARGET_FILE:zdmc>;ZDM_HISTORY_DRIVER=$<TARGET_FILE:zdm_history_driver>")
endforeach()
