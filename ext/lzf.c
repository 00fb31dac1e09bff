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
