# The debezium CDC source (runtime/cdc_debezium.c) against librdkafka's
# in-process mock cluster: no broker, no database.  Label "kafka".
#   test_debezium -- the message parser alone, then every case against one
#                    mock cluster shared by all (tests/runtime/test_debezium.c)
add_executable(test_debezium ${CMAKE_CURRENT_LIST_DIR}/test_debezium.c)
target_link_libraries(test_debezium PRIVATE zdm_core PkgConfig::RDKAFKA)

add_test(NAME runtime_debezium COMMAND test_debezium)
set_tests_properties(runtime_debezium PROPERTIES LABELS kafka TIMEOUT 120)
