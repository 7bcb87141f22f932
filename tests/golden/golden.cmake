# Golden tests of the compiler's output, byte for byte (tests/golden/golden.sh):
#   golden_plans        plans/*.zdm compile to plans/*.plan
#   golden_errors       tests/golden/errors/*.zdm give exactly *.err (+ *.exit)
#   golden_determinism  same bytes twice, from another directory, by absolute path
#   golden_check        zdmc compile --check: 0 when unchanged, 1 when edited
#   golden_ldd          zdmc links no libpq, libgit2 or librdkafka
# ZDM_REGEN=1 ctest -R golden (or tests/golden/golden.sh --regen) rewrites
# the expected files instead of comparing.
foreach(what plans errors determinism check ldd)
  add_test(NAME golden_${what}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/golden.sh ${what}
                   $<TARGET_FILE:zdmc>
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(golden_${what} PROPERTIES LABELS golden TIMEOUT 120)
endforeach()
include(${CMAKE_CURRENT_LIST_DIR}/review.cmake OPTIONAL)
