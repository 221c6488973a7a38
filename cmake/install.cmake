# `cmake --install build --prefix P` installs the engine as a CMake package:
#   P/lib/libarcgrad.a, libarcgrad_train.a    the engine and the training-loop library
#   P/include/arcgrad/{core,layers,...}/*.h    headers, included as "core/tensor.h"
#   P/lib/cmake/arcgrad/arcgradConfig.cmake    for find_package(arcgrad)
#   P/bin/train, evaluate, predict, ...         the apps (when built)
# Another project then builds against it with
#   find_package(arcgrad REQUIRED)
#   target_link_libraries(app PRIVATE arcgrad::arcgrad)     # or arcgrad::train
# tests/package/ checks exactly that against an install into a temporary prefix.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AG_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/arcgrad)
set_target_properties(arcgrad_train PROPERTIES EXPORT_NAME train)

install(TARGETS arcgrad arcgrad_train EXPORT arcgradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/arcgrad)
foreach(folder core layers models losses data apps/lib)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/arcgrad/${folder}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.cuh" EXCLUDE)
endforeach()
if(AG_BUILD_APPS)
  install(TARGETS ${AG_APP_TARGETS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(EXPORT arcgradTargets NAMESPACE arcgrad:: DESTINATION ${AG_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/arcgradConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/arcgradConfig.cmake INSTALL_DESTINATION ${AG_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/arcgradConfigVersion.cmake VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/arcgradConfig.cmake ${PROJECT_BINARY_DIR}/arcgradConfigVersion.cmake
        DESTINATION ${AG_INSTALL_CMAKEDIR})

if(AG_BUILD_TESTS)
  # Installs this build into a temporary prefix, then configures, builds and runs the
  # consumer project in tests/package/consumer against it.
  add_test(NAME package_consumer
           COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DWORK_DIR=${PROJECT_BINARY_DIR}/package_test
                   -DCONSUMER_DIR=${PROJECT_SOURCE_DIR}/tests/package/consumer
                   -DCXX_COMPILER=${CMAKE_CXX_COMPILER} -P ${PROJECT_SOURCE_DIR}/tests/package/run_consumer.cmake)
  set_tests_properties(package_consumer PROPERTIES TIMEOUT 600)
endif()
