/* LZF decompression for rdbkit (own implementation of the format in RDB_FORMAT.md §5). */
#ifndef RDBKIT_LZF_H
#define RDBKIT_LZF_H

#include <stddef.h>
#include <stdint.h>

/* Error codes returned (negated) by rdbkit_lzf_decompress. */
#define RDBKIT_LZF_E_INPUT   1  /* a run or back-reference runs past the compressed input */
#define RDBKIT_LZF_E_OUTPUT  2  /* the output would exceed out_len */
#define RDBKIT_LZF_E_BACKREF 3  /* a back-reference points before the output start */

/* Decompress in[0:in_len] into out[0:out_len]. Returns the number of bytes
 * written (>= 0), or -code on corrupt input. Never reads or writes outside
 * the given ranges; *err_at receives the input offset of the failing token. */
ptrdiff_t rdbkit_lzf_decompress(const uint8_t *in, size_t in_len,
                                uint8_t *out, size_t out_len, size_t *err_at);

/* Hash table size for rdbkit_lzf_compress: (1 << RDBKIT_LZF_HLOG) uint32 slots. */
#define RDBKIT_LZF_HLOG 14

/* Compress in[0:in_len] into out[0:out_len] (own greedy hash-table
 * compressor). Returns the compressed size, or 0 when it does not fit in
 * out_len (or in_len is 0). htab: caller-owned table of 1 << RDBKIT_LZF_HLOG
 * slots; it needs no initialisation beyond being allocated (zeroed once is
 * tidiest) and may be reused across calls. */
size_t rdbkit_lzf_compress(const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len, uint32_t *htab);

#endif
