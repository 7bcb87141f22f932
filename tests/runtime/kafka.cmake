# The debezium CDC source (runtime/cdc_debezium.c and its event parser,
# runtime/cdc_debezium_parse.c) against librdkafka's in-process mock
# cluster: no broker, no database.  Label "kafka".
#   test_debezium -- the message parser alone, then every case against one
#                    mock cluster shared by all (tests/runtime/test_debezium.c)
add_executable(test_debezium ${CMAKE_CURRENT_LIST_DIR}/test_debezium.c)
target_link_libraries(test_debezium PRIVATE zdm_core PkgConfig::RDKAFKA)

add_test(NAME runtime_debezium COMMAND test_debezium)
set_tests_properties(runtime_debezium PROPERTIES LABELS kafka TIMEOUT 120)

# Debezium end to end: zdm apply and zdm sync --topic on a debezium plan
# (plans/orders_amount_cdc.zdm) against a real PostgreSQL (tests/lib/pg.sh),
# fed by zdm_dbz_relay, a stand-in for the Debezium connector that reads its
# own slot and produces Debezium change events into a mock cluster it
# starts.  Labels sql and kafka.
#   zdm_dbz_relay          -- tests/runtime/dbz_relay.c
#   apply_debezium_CASE    -- apply_debezium.sh CASE; the script says what
#                             each case asserts
add_executable(zdm_dbz_relay ${CMAKE_CURRENT_LIST_DIR}/dbz_relay.c)
target_link_libraries(zdm_dbz_relay PRIVATE zdm_core PkgConfig::RDKAFKA
                      PkgConfig::JANSSON)

foreach(dbz_case traffic same barrier)
  add_test(NAME apply_debezium_${dbz_case}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/apply_debezium.sh ${dbz_case}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(apply_debezium_${dbz_case} PROPERTIES
    LABELS "sql;kafka"
    TIMEOUT 180
    ENVIRONMENT "ZDM=$<TARGET_FILE:zdm>;ZDMC=$<TARGET_FILE:zdmc>;ZDM_TRAFFIC=$<TARGET_FILE:zdm_traffic>;ZDM_DBZ_RELAY=$<TARGET_FILE:zdm_dbz_relay>")
endforeach()
