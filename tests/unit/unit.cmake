# Unit tests (cmocka), one file per module under test.
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
include(${CMAKE_CURRENT_LIST_DIR}/sqlexpr.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/plan.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/compiler.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/progress.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/sqlrisk.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/memory.cmake OPTIONAL)
