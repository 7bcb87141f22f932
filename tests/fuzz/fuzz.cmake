# libFuzzer targets for the compiler (tests/fuzz/fuzz_compile.c) and the
# Debezium message parser (tests/fuzz/fuzz_debezium.c), built only with
# -DZDM_FUZZ=ON and clang.  zdmc_core gets -fsanitize=fuzzer-no-link
# (coverage instrumentation without libFuzzer's main) plus ASan and UBSan, so
# the fuzzer sees into the scanner, parser and checks; the target links
# libFuzzer.  Run them with tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET].
if(ZDM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ZDM_FUZZ needs clang (configure with CC=clang-14)")
  endif()
  set(zdm_fuzz_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
  target_compile_options(zdmc_core PRIVATE -fsanitize=fuzzer-no-link
                         ${zdm_fuzz_sanitizers})
  # Everything that links zdmc_core (zdmc, unit tests) needs the runtimes.
  target_link_options(zdmc_core INTERFACE -fsanitize=fuzzer-no-link
                      ${zdm_fuzz_sanitizers})
  add_executable(fuzz_compile ${CMAKE_CURRENT_LIST_DIR}/fuzz_compile.c)
  target_compile_options(fuzz_compile PRIVATE -fsanitize=fuzzer
                         ${zdm_fuzz_sanitizers})
  target_link_options(fuzz_compile PRIVATE -fsanitize=fuzzer
                      ${zdm_fuzz_sanitizers})
  target_link_libraries(fuzz_compile PRIVATE zdmc_core)
  # A short smoke run so ctest in a fuzz build exercises the target.
  add_test(NAME fuzz_compile_smoke
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh ${CMAKE_BINARY_DIR} 10
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(fuzz_compile_smoke PROPERTIES LABELS fuzz TIMEOUT 120)

  # The Debezium message parser (tests/fuzz/fuzz_debezium.c), the same way:
  # zdm_core instrumented, the target linking libFuzzer.
  target_compile_options(zdm_core PRIVATE -fsanitize=fuzzer-no-link
                         ${zdm_fuzz_sanitizers})
  target_link_options(zdm_core INTERFACE -fsanitize=fuzzer-no-link
                      ${zdm_fuzz_sanitizers})
  add_executable(fuzz_debezium ${CMAKE_CURRENT_LIST_DIR}/fuzz_debezium.c)
  target_compile_options(fuzz_debezium PRIVATE -fsanitize=fuzzer
                         ${zdm_fuzz_sanitizers})
  target_link_options(fuzz_debezium PRIVATE -fsanitize=fuzzer
                      ${zdm_fuzz_sanitizers})
  target_link_libraries(fuzz_debezium PRIVATE zdm_core)
  add_test(NAME fuzz_debezium_smoke
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh ${CMAKE_BINARY_DIR} 10
                   debezium
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(fuzz_debezium_smoke PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
