// qrplate's CUDA emulation: see cuda_runtime.h.
#pragma once
#include "cuda_runtime.h"
