# ONNX export (interop/, apps/export_onnx.cpp, tests/test_onnx_*.cpp).
# AG_ONNX=AUTO builds it when the ONNX C++ library and protobuf are found (Debian:
# libonnx-dev, libprotobuf-dev); ON requires them, OFF skips them. Only the export app and
# its tests link ONNX: the engine library never does.
# The round-trip test also looks for OpenCV's DNN module (Debian: libopencv-dnn-dev, which
# ships no CMake package, hence the plain find_path / find_library fallback); without it
# that test is registered and reports itself skipped.
set(AG_ONNX AUTO CACHE STRING "Build the ONNX exporter: AUTO, ON or OFF")
set(AG_ONNX_ENABLED OFF)
if(NOT AG_ONNX STREQUAL "OFF")
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX QUIET CONFIG)
  endif()
  if(Protobuf_FOUND AND ONNX_FOUND)
    set(AG_ONNX_ENABLED ON)
    message(STATUS "arcgrad: ONNX export ON (ONNX ${ONNX_VERSION}, protobuf ${Protobuf_VERSION})")
  elseif(AG_ONNX STREQUAL "ON")
    message(FATAL_ERROR "AG_ONNX=ON but the ONNX C++ library or protobuf is missing "
                        "(Debian: apt-get install libonnx-dev libprotobuf-dev)")
  else()
    message(STATUS "arcgrad: ONNX export OFF (ONNX or protobuf not found; Debian: libonnx-dev libprotobuf-dev)")
  endif()
else()
  message(STATUS "arcgrad: ONNX export OFF (AG_ONNX=OFF)")
endif()

set(AG_OPENCV_DNN_FOUND OFF)
if(AG_ONNX_ENABLED)
  find_package(OpenCV QUIET COMPONENTS core dnn)
  if(OpenCV_FOUND)
    add_library(ag_opencv_dnn INTERFACE)
    target_link_libraries(ag_opencv_dnn INTERFACE ${OpenCV_LIBS})
    target_include_directories(ag_opencv_dnn SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
    set(AG_OPENCV_DNN_FOUND ON)
  else()
    find_path(AG_OPENCV_INCLUDE_DIR opencv2/dnn.hpp PATH_SUFFIXES opencv4)
    find_library(AG_OPENCV_DNN_LIBRARY opencv_dnn)
    find_library(AG_OPENCV_CORE_LIBRARY opencv_core)
    if(AG_OPENCV_INCLUDE_DIR AND AG_OPENCV_DNN_LIBRARY AND AG_OPENCV_CORE_LIBRARY)
      add_library(ag_opencv_dnn INTERFACE)
      target_link_libraries(ag_opencv_dnn INTERFACE ${AG_OPENCV_DNN_LIBRARY} ${AG_OPENCV_CORE_LIBRARY})
      target_include_directories(ag_opencv_dnn SYSTEM INTERFACE ${AG_OPENCV_INCLUDE_DIR})
      set(AG_OPENCV_DNN_FOUND ON)
    endif()
  endif()
  if(AG_OPENCV_DNN_FOUND)
    message(STATUS "arcgrad: ONNX round-trip test through OpenCV DNN ON")
  else()
    message(STATUS "arcgrad: ONNX round-trip test skipped (OpenCV DNN not found; Debian: libopencv-dnn-dev)")
  endif()
endif()

# The exporter library, for the app and the tests.
function(ag_add_onnx_library)
  file(GLOB AG_INTEROP_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/interop/*.cpp)
  add_library(arcgrad_onnx STATIC ${AG_INTEROP_SOURCES})
  target_link_libraries(arcgrad_onnx PUBLIC arcgrad_train onnx onnx_proto protobuf::libprotobuf)
endfunction()
