/* LZF decompression (own implementation; format facts in shared/RDB_FORMAT.md §5).
 *
 * A control byte below 32 starts a literal run of ctrl+1 bytes. Otherwise the
 * top three bits are a match length (7 means "add the next byte"), and the
 * low five bits plus the next byte form a back-offset; the match copies
 * length+2 bytes from (output - offset - 1), possibly overlapping itself.
 * Every read and write is checked against its buffer; the fast paths copy in
 * fixed 8/32-byte blocks only when both buffers have that much room left.
 */
#include <string.h>

#include "lzf.h"

ptrdiff_t rdbkit_lzf_decompress(const uint8_t *in, size_t in_len,
                                uint8_t *out, size_t out_len, size_t *err_at)
{
    size_t ip = 0, op = 0;

    while (ip < in_len) {
        size_t tok = ip;
        unsigned ctrl = in[ip++];

        if (ctrl < 32) {
            size_t run = (size_t)ctrl + 1;
            if (run > in_len - ip) { *err_at = tok; return -RDBKIT_LZF_E_INPUT; }
            if (run > out_len - op) { *err_at = tok; return -RDBKIT_LZF_E_OUTPUT; }
            if (in_len - ip >= 32 && out_len - op >= 32)
                memcpy(out + op, in + ip, 32);   /* run <= 32: one fixed-size block */
            else
                memcpy(out + op, in + ip, run);
            ip += run;
            op += run;
        } else {
            size_t len = ctrl >> 5;
            size_t back;
            if (len == 7) {
                if (ip >= in_len) { *err_at = tok; return -RDBKIT_LZF_E_INPUT; }
                len += in[ip++];
            }
            if (ip >= in_len) { *err_at = tok; return -RDBKIT_LZF_E_INPUT; }
            back = (((size_t)ctrl & 0x1f) << 8) + in[ip++] + 1;
            len += 2;
            if (back > op) { *err_at = tok; return -RDBKIT_LZF_E_BACKREF; }
            if (len > out_len - op) { *err_at = tok; return -RDBKIT_LZF_E_OUTPUT; }
            {
                uint8_t *d = out + op;
                const uint8_t *s = d - back;
                if (back >= 8 && out_len - op >= len + 8) {
                    /* 8-byte blocks never overlap their source (back >= 8); the
                     * last block may write up to 7 bytes past the match, inside out */
                    size_t i;
                    for (i = 0; i < len; i += 8) memcpy(d + i, s + i, 8);
                } else {
                    size_t i;
                    for (i = 0; i < len; i++) d[i] = s[i];
                }
            }
            op += len;
        }
    }
    return (ptrdiff_t)op;
}

/* LZF compression (own implementation of the format above).
 *
 * Greedy: a hash table maps a 3-byte prefix to the last input position that
 * started with it (stored +1, 0 = empty). A candidate is used only after
 * checking it lies before the cursor, within the 8 KiB window, and really
 * matches, so stale entries from earlier inputs are harmless and the table
 * needs no clearing between calls. Matches are 3..264 bytes; literal runs are
 * emitted in chunks of at most 32 bytes. After every 32 positions without a
 * match the scan steps one byte further (cheap on incompressible data, at
 * a small cost in ratio). Returns 0 if the output would not fit in out_len
 * (the caller then stores the data raw).
 */
#define LZF_MAX_OFF 8192
#define LZF_MAX_REF 264

static inline uint64_t lzf_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t lzf_hash(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    return (v * 2654435761u) >> (32 - RDBKIT_LZF_HLOG);
}

static inline int lzf_flush_lit(const uint8_t *in, size_t from, size_t to,
                                uint8_t *out, size_t *op, size_t out_len)
{
    while (from < to) {
        size_t run = to - from;
        if (run > 32) run = 32;
        if (out_len - *op < run + 1) return -1;
        out[(*op)++] = (uint8_t)(run - 1);
        memcpy(out + *op, in + from, run);
        *op += run;
        from += run;
    }
    return 0;
}

size_t rdbkit_lzf_compress(const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len, uint32_t *htab)
{
    size_t ip = 0, op = 0, lit = 0, miss = 0;

    if (in_len == 0 || in_len > 0xFFFFFFFEu) return 0;
    while (ip + 2 < in_len) {
        uint32_t h = lzf_hash(in + ip);
        size_t ref = htab[h];
        htab[h] = (uint32_t)(ip + 1);
        if (ref != 0) {
            ref -= 1;
            if (ref < ip && ip - ref <= LZF_MAX_OFF && in[ref] == in[ip]
                && in[ref + 1] == in[ip + 1] && in[ref + 2] == in[ip + 2]) {
                size_t maxlen = in_len - ip, len = 3, off = ip - ref - 1;
                if (maxlen > LZF_MAX_REF) maxlen = LZF_MAX_REF;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* extend 8 bytes at a time while both reads stay inside the input;
                 * the lowest set bit of the XOR is the first differing byte (LE) */
                while (len + 8 <= maxlen) {
                    uint64_t x = lzf_load64(in + ref + len) ^ lzf_load64(in + ip + len);
                    if (x) {
                        len += (size_t)__builtin_ctzll(x) >> 3;
                        goto matched;
                    }
                    len += 8;
                }
#endif
                while (len < maxlen && in[ref + len] == in[ip + len]) len++;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            matched:
#endif
                if (lzf_flush_lit(in, lit, ip, out, &op, out_len) < 0) return 0;
                if (out_len - op < 3) return 0;
                {
                    size_t l = len - 2;
                    if (l < 7) {
                        out[op++] = (uint8_t)((l << 5) | (off >> 8));
                    } else {
                        out[op++] = (uint8_t)((7 << 5) | (off >> 8));
                        out[op++] = (uint8_t)(l - 7);
                    }
                    out[op++] = (uint8_t)(off & 0xff);
                }
                ip += len;
                lit = ip;
                miss = 0;
                /* index the last two positions of the match, as liblzf does */
                if (ip + 2 < in_len) {
                    htab[lzf_hash(in + ip - 1)] = (uint32_t)ip;
                    htab[lzf_hash(in + ip - 2)] = (uint32_t)(ip - 1);
                }
                continue;
            }
        }
        /* Incompressible stretches: step further the longer no match is found
         * (LZ4's acceleration idea), and give up as soon as the pending
         * literals alone no longer fit in the output. */
        ip += 1 + (miss++ >> 5);
        if (ip > in_len) ip = in_len;
        if (op + (ip - lit) + ((ip - lit) >> 5) + 1 > out_len) return 0;
    }
    if (lzf_flush_lit(in, lit, in_len, out, &op, out_len) < 0) return 0;
    return op;
}
