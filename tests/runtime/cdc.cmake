# The native change source (runtime/cdc_pgoutput.c).
#   zdm_cdc_pgoutput_unit   -- the decoder fed hand-made messages, malformed
#                              ones too, no server (label unit)
#                              (tests/runtime/cdc_pgoutput_unit.c)
#   zdm_cdc_pgoutput_driver -- reads a slot and prints the changes
#                              (tests/runtime/cdc_pgoutput_driver.c)
#   cdc_pgoutput_CASE       -- cdc_pgoutput_test.sh CASE against a real
#                              PostgreSQL it starts (tests/lib/pg.sh), label
#                              sql; the script says what each case asserts
add_executable(zdm_cdc_pgoutput_unit ${CMAKE_CURRENT_LIST_DIR}/cdc_pgoutput_unit.c)
target_link_libraries(zdm_cdc_pgoutput_unit PRIVATE zdm_core)
add_test(NAME unit_cdc_pgoutput COMMAND zdm_cdc_pgoutput_unit)
set_tests_properties(unit_cdc_pgoutput PROPERTIES LABELS unit TIMEOUT 120)

add_executable(zdm_cdc_pgoutput_driver ${CMAKE_CURRENT_LIST_DIR}/cdc_pgoutput_driver.c)
target_link_libraries(zdm_cdc_pgoutput_driver PRIVATE zdm_core)

foreach(case decode ack keepalive busy throughput)
  add_test(NAME cdc_pgoutput_${case}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cdc_pgoutput_test.sh ${case}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(cdc_pgoutput_${case} PROPERTIES
    LABELS sql
    TIMEOUT 300
    ENVIRONMENT "ZDM_CDC_DRIVER=$<TARGET_FILE:zdm_cdc_pgoutput_driver>")
endforeach()

# The applier and `zdm sync` (runtime/cdc_apply.c, runtime/sync.c).
#   zdm_cdc_apply_driver -- runs zdm sync on a hand-built cdc plan (the
#                           split of users.name)
#                           (tests/runtime/cdc_apply_driver.c)
#   cdc_apply_CASE       -- cdc_apply_test.sh CASE against a real PostgreSQL
#                           it starts (tests/lib/pg.sh), label sql; the
#                           script says what each case asserts
add_executable(zdm_cdc_apply_driver ${CMAKE_CURRENT_LIST_DIR}/cdc_apply_driver.c)
target_link_libraries(zdm_cdc_apply_driver PRIVATE zdm_core)

foreach(case shapes replay stop quiet errors throughput writer_wait locks)
  add_test(NAME cdc_apply_${case}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cdc_apply_test.sh ${case}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(cdc_apply_${case} PROPERTIES
    LABELS sql
    TIMEOUT 300
    ENVIRONMENT "ZDM_CDC_APPLY_DRIVER=$<TARGET_FILE:zdm_cdc_apply_driver>")
endforeach()
