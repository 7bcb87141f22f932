# The plan file round trip: compiler/plan_write.c against runtime/plan_read.c.
# The one test that links both halves of the zdmc/zdm contract, on purpose:
# the two programs share no code, so only this holds them to one format.
add_executable(test_plan ${CMAKE_CURRENT_LIST_DIR}/test_plan.c)
target_link_libraries(test_plan PRIVATE zdmc_core zdm_core PkgConfig::CMOCKA)
add_test(NAME unit_plan COMMAND test_plan)
set_tests_properties(unit_plan PROPERTIES LABELS unit)
