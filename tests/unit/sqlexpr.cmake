# Unit tests of compiler/sqlexpr.c (SQL expressions and types through
# libpg_query) and compiler/ident.c (identifier and literal quoting).
add_executable(test_sqlexpr ${CMAKE_CURRENT_LIST_DIR}/test_sqlexpr.c)
target_link_libraries(test_sqlexpr PRIVATE zdmc_core PkgConfig::CMOCKA)
add_test(NAME unit_sqlexpr COMMAND test_sqlexpr)

add_executable(test_ident ${CMAKE_CURRENT_LIST_DIR}/test_ident.c)
target_link_libraries(test_ident PRIVATE zdmc_core PkgConfig::CMOCKA)
add_test(NAME unit_ident COMMAND test_ident)
set_tests_properties(unit_sqlexpr unit_ident PROPERTIES LABELS unit)
