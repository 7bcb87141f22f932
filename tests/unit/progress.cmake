# Unit tests of runtime/progress.c (the text of progress lines, and when a
# log line is due).
add_executable(test_progress ${CMAKE_CURRENT_LIST_DIR}/test_progress.c)
target_link_libraries(test_progress PRIVATE zdm_core PkgConfig::CMOCKA)
add_test(NAME unit_progress COMMAND test_progress)
set_tests_properties(unit_progress PROPERTIES LABELS unit)
