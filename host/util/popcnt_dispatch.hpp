// Popcount-bound loops compiled twice, with and without the POPCNT instruction (baseline x86-64
// lacks it; without it every popcount is a libgcc call), the loader picking the copy the CPU
// supports. QRP_POPCNT_CLONES_FLATTEN also inlines everything the function calls into each copy,
// so the per-code core functions it calls get the instruction too.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)  // sanitizers instrument the resolver, which runs before they start
#define QRP_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#define QRP_POPCNT_CLONES_FLATTEN __attribute__((target_clones("popcnt", "default"), flatten))
#else
#define QRP_POPCNT_CLONES
#define QRP_POPCNT_CLONES_FLATTEN
#endif
