# CUDA backend detection. Sets AG_CUDA_ENABLED and defines ag_configure_cuda_target().
# AG_USE_CUDA=AUTO enables the backend when nvcc, cuBLAS and cuDNN are all found;
# ON makes a missing piece an error; OFF skips the search.
set(AG_CUDA_ENABLED OFF)
set(CUDNN_ROOT "" CACHE PATH "Where cuDNN is installed (include/ and lib/ below it)")

if(NOT AG_USE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90) # the H200; override with -DCMAKE_CUDA_ARCHITECTURES=...
    endif()
    enable_language(CUDA)
    # CMake before 3.26 does not know nvcc's C++20 flag, and the C++ standard (20) carries
    # over to CUDA sources; tell it.
    if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
      list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
    endif()
    find_package(CUDAToolkit)
    find_path(CUDNN_INCLUDE_DIR cudnn.h
              HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
              PATH_SUFFIXES include)
    find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
                 HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR}
                 PATH_SUFFIXES lib lib64 lib/x64)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas AND CUDNN_INCLUDE_DIR
     AND CUDNN_LIBRARY)
    set(AG_CUDA_ENABLED ON)
    message(STATUS "arcgrad: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                   "arch ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${CUDNN_LIBRARY})")
  elseif(AG_USE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "AG_USE_CUDA=ON but the CUDA toolchain is incomplete: nvcc='${CMAKE_CUDA_COMPILER}' "
                        "cuBLAS=${CUDAToolkit_FOUND} cudnn.h='${CUDNN_INCLUDE_DIR}' libcudnn='${CUDNN_LIBRARY}'. "
                        "Pass -DCUDNN_ROOT=<dir> if cuDNN lives elsewhere.")
  else()
    message(STATUS "arcgrad: CUDA backend OFF (nvcc, cuBLAS or cuDNN not found)")
  endif()
endif()

function(ag_configure_cuda_target target)
  target_compile_definitions(${target} PUBLIC AG_WITH_CUDA=1)
  target_include_directories(${target} PUBLIC ${CUDNN_INCLUDE_DIR})
  target_link_libraries(${target} PUBLIC CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY})
  set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  # Host-side warnings as for the C++ sources.
  target_compile_options(${target} PRIVATE
                         $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra>)
endfunction()
