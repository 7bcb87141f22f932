# Golden tests of zdmc explain and zdmc diff (tests/golden/review.sh):
#   review_explain  plans/*.plan explain to tests/golden/explain/*.md
#   review_diff     tests/golden/diff/C.old.* against C.new.* gives C.md
#   review_errors   unreadable plans exit 2 with the plan reader's message
# ZDM_REGEN=1 ctest -R review (or tests/golden/review.sh --regen) rewrites
# the expected files instead of comparing.
foreach(what explain diff errors)
  add_test(NAME review_${what}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/review.sh ${what}
                   $<TARGET_FILE:zdmc>
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(review_${what} PROPERTIES LABELS golden TIMEOUT 120)
endforeach()
