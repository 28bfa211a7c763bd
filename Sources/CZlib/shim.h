#ifndef TAPE_CZLIB_SHIM_H
#define TAPE_CZLIB_SHIM_H
#include <zlib.h>
// inflateInit2/deflateInit2 are macros; expose them as functions Swift can call.
static inline int tape_inflateInit2(z_streamp s, int windowBits) {
    return inflateInit2_(s, windowBits, ZLIB_VERSION, (int)sizeof(z_stream));
}
static inline int tape_deflateInit2(z_streamp s, int level, int windowBits) {
    return deflateInit2_(s, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, (int)sizeof(z_stream));
}
#endif
