# Data-parallel training (core/dist/, docs/distributed.md). Sets AG_MPI_ENABLED and
# AG_NCCL_ENABLED and defines ag_configure_dist_target().
# AG_USE_MPI=AUTO builds the MPI communicator when find_package(MPI COMPONENTS CXX) succeeds
# (Debian: libopenmpi-dev, openmpi-bin); ON makes a missing MPI an error; OFF skips the
# search. Without it the world is one process (core/dist/single.cpp) and every program
# still builds. NCCL (GPU-to-GPU allreduce, bootstrapped through MPI) is added when both
# the CUDA backend and MPI are on and nccl.h / libnccl are found (the CUDA root ships them).
set(AG_USE_MPI AUTO CACHE STRING "Build the MPI communicator (data-parallel training): AUTO, ON or OFF")
set_property(CACHE AG_USE_MPI PROPERTY STRINGS AUTO ON OFF)
set(AG_MPI_ENABLED OFF)
set(AG_NCCL_ENABLED OFF)

if(NOT AG_USE_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(AG_MPI_ENABLED ON)
    message(STATUS "arcgrad: MPI ON (MPI ${MPI_CXX_VERSION}, mpiexec '${MPIEXEC_EXECUTABLE}')")
  elseif(AG_USE_MPI STREQUAL "ON")
    message(FATAL_ERROR "AG_USE_MPI=ON but no MPI for C++ was found "
                        "(Debian: apt-get install libopenmpi-dev openmpi-bin)")
  else()
    message(STATUS "arcgrad: MPI OFF (not found; Debian: libopenmpi-dev openmpi-bin)")
  endif()
else()
  message(STATUS "arcgrad: MPI OFF (AG_USE_MPI=OFF)")
endif()

if(AG_MPI_ENABLED AND AG_CUDA_ENABLED)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
            PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT} PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(AG_NCCL_ENABLED ON)
    message(STATUS "arcgrad: NCCL ON (${NCCL_LIBRARY})")
  else()
    message(STATUS "arcgrad: NCCL OFF (nccl.h or libnccl not found; CUDA tensors go through MPI via the host)")
  endif()
endif()

# The sources of core/dist/ that need a library the build may lack.
function(ag_filter_dist_sources sources_var)
  set(sources ${${sources_var}})
  if(NOT AG_MPI_ENABLED)
    list(FILTER sources EXCLUDE REGEX ".*/core/dist/mpi[^/]*\\.cpp$")
  endif()
  if(NOT AG_NCCL_ENABLED)
    list(FILTER sources EXCLUDE REGEX ".*/core/dist/nccl[^/]*\\.cpp$")
  endif()
  set(${sources_var} ${sources} PARENT_SCOPE)
endfunction()

# Only mpi.cpp includes mpi.h and only nccl.cpp nccl.h: the rest of the engine compiles
# without their include paths. The libraries are linked into whatever links the engine.
function(ag_configure_dist_target target)
  get_target_property(source_dir ${target} SOURCE_DIR)
  if(AG_MPI_ENABLED)
    target_compile_definitions(${target} PUBLIC AG_HAVE_MPI=1)
    get_target_property(mpi_includes MPI::MPI_CXX INTERFACE_INCLUDE_DIRECTORIES)
    get_target_property(mpi_options MPI::MPI_CXX INTERFACE_COMPILE_OPTIONS)
    set_property(SOURCE ${source_dir}/core/dist/mpi.cpp TARGET_DIRECTORY ${target} APPEND
                 PROPERTY INCLUDE_DIRECTORIES ${mpi_includes})
    # The C API is all arcgrad uses: skip the deprecated C++ bindings (and their warnings).
    set_property(SOURCE ${source_dir}/core/dist/mpi.cpp TARGET_DIRECTORY ${target} APPEND
                 PROPERTY COMPILE_DEFINITIONS OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
    if(mpi_options)
      set_property(SOURCE ${source_dir}/core/dist/mpi.cpp TARGET_DIRECTORY ${target} APPEND
                   PROPERTY COMPILE_OPTIONS ${mpi_options})
    endif()
    target_link_libraries(${target} PRIVATE $<LINK_ONLY:MPI::MPI_CXX>)
  endif()
  if(AG_NCCL_ENABLED)
    target_compile_definitions(${target} PUBLIC AG_HAVE_NCCL=1)
    set_property(SOURCE ${source_dir}/core/dist/nccl.cpp TARGET_DIRECTORY ${target} APPEND
                 PROPERTY INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
    target_link_libraries(${target} PUBLIC ${NCCL_LIBRARY})
  endif()
endfunction()
