# Unit tests of runtime/arena.c and runtime/strbuf.c (the runtime's region
# allocator and text buffer).
add_executable(test_memory ${CMAKE_CURRENT_LIST_DIR}/test_memory.c)
target_link_libraries(test_memory PRIVATE zdm_core PkgConfig::CMOCKA)
add_test(NAME unit_memory COMMAND test_memory)
set_tests_properties(unit_memory PROPERTIES LABELS unit)
