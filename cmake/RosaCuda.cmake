# RosaCuda.cmake: ROSA_CUDA=AUTO|ON|OFF -> ROSA_HAVE_CUDA.  With CUDA, kernels/ builds the
# rosa_cuda library (nvcc + cuBLAS) and adds the CUDA backend to rosa_engine; without it,
# kernels/cuda_absent.c tells the loader that device "cuda" is not in this build.
#
# How the toolkit is found: CMake's CUDA compiler detection (check_language) takes $CUDACXX,
# else `nvcc` on PATH; we add /usr/local/cuda/bin/nvcc as a last resort (the NVIDIA installers'
# default, often not on PATH).  find_package(CUDAToolkit) then locates cudart and cuBLAS next
# to that nvcc.  AUTO builds without CUDA when any piece is missing; ON fails the configure.
set(ROSA_HAVE_CUDA OFF)
if(NOT ROSA_CUDA MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ROSA_CUDA must be AUTO, ON or OFF (got '${ROSA_CUDA}')")
endif()
if(NOT ROSA_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    find_program(ROSA_NVCC_ON_PATH nvcc)
    if(NOT ROSA_NVCC_ON_PATH)
      set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # the architectures must be known before the language is enabled
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas AND TARGET CUDA::cudart)
    set(ROSA_HAVE_CUDA ON)
    message(STATUS "rosa: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(ROSA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ROSA_CUDA=ON but no usable CUDA toolkit (nvcc, cudart, cuBLAS) was found; "
                        "set CUDACXX=/path/to/nvcc or -DCMAKE_CUDA_COMPILER=..., or use -DROSA_CUDA=AUTO|OFF")
  else()
    message(STATUS "rosa: no CUDA toolkit found, building without the CUDA backend")
  endif()
endif()

# host-side pieces of the CUDA backend that need no toolkit (and are unit-tested without one)
target_sources(rosa_engine PRIVATE ${PROJECT_SOURCE_DIR}/kernels/kv_pool.c ${PROJECT_SOURCE_DIR}/kernels/cu_budget.c)
target_include_directories(rosa_engine PUBLIC ${PROJECT_SOURCE_DIR}/kernels)
if(ROSA_HAVE_CUDA)
  add_subdirectory(kernels)
else()
  target_sources(rosa_engine PRIVATE ${PROJECT_SOURCE_DIR}/kernels/cuda_absent.c)
endif()
