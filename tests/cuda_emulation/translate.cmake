# qrplate's CUDA emulation: a .cu file as C++ for the emulated runtime (include/cuda_runtime.h).
# Run as cmake -DIN=file.cu -DOUT=file.cpp -P translate.cmake. Two rewrites, nothing else:
#   k<<<grid, block, shared, stream>>>(args)  ->  ::qrplate_emu::launch(k, "k", ::qrplate_emu::config{grid, block, shared, stream})(args)
#   extern __shared__ T name[];               ->  T* const name = reinterpret_cast<T*>(::qrplate_emu::dynamic_shared());
file(READ "${IN}" text)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*)<<<" "::qrplate_emu::launch(\\1, \"\\1\", ::qrplate_emu::config{" text "${text}")
string(REPLACE ">>>(" "})(" text "${text}")
string(REGEX REPLACE "extern __shared__ ([^;\\[]+) ([A-Za-z_][A-Za-z0-9_]*)\\[\\];"
       "\\1* const \\2 = reinterpret_cast<\\1*>(::qrplate_emu::dynamic_shared());" text "${text}")
if(text MATCHES "<<<|>>>")
  message(FATAL_ERROR "translate.cmake: a launch in ${IN} it cannot rewrite")
endif()
# Line for line as the .cu file (CMakeLists.txt adds -include cuda_runtime.h, as nvcc does).
file(WRITE "${OUT}.tmp" "${text}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
