# Unit tests of compiler/sqlrisk.c: the lock each statement of a plan takes,
# and for how long (what zdmc explain and zdmc diff report).
add_executable(test_sqlrisk ${CMAKE_CURRENT_LIST_DIR}/test_sqlrisk.c)
target_link_libraries(test_sqlrisk PRIVATE zdmc_review PkgConfig::CMOCKA)
add_test(NAME unit_sqlrisk COMMAND test_sqlrisk)
set_tests_properties(unit_sqlrisk PROPERTIES LABELS unit)
