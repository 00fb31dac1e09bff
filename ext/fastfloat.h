/* Decimal -> double for score text (own implementation of the Eisel-Lemire
 * method: D. Lemire, "Number Parsing at a Gigabyte per Second", 2021).
 *
 * w * 10^q is computed from the truncated 128-bit normalized mantissa of 5^q
 * (tables filled once at import by _codec.pyx from exact integers). When the
 * truncation could change the correctly rounded result, the function reports
 * failure and the caller uses CPython's exact parser instead, so the result
 * always equals float(text).
 */
#ifndef RDBKIT_FASTFLOAT_H
#define RDBKIT_FASTFLOAT_H

#include <stdint.h>
#include <string.h>

#define RDBKIT_FF_MIN_Q (-342)
#define RDBKIT_FF_MAX_Q 308

static uint64_t rdbkit_ff_hi[RDBKIT_FF_MAX_Q - RDBKIT_FF_MIN_Q + 1];
static uint64_t rdbkit_ff_lo[RDBKIT_FF_MAX_Q - RDBKIT_FF_MIN_Q + 1];

static void rdbkit_ff_set(int q, uint64_t hi, uint64_t lo)
{
    rdbkit_ff_hi[q - RDBKIT_FF_MIN_Q] = hi;
    rdbkit_ff_lo[q - RDBKIT_FF_MIN_Q] = lo;
}

/* 1 and *out set on success; 0 when the caller must use an exact parser. */
static int rdbkit_ff_compute(uint64_t w, int64_t q, int negative, double *out)
{
    unsigned __int128 prod;
    uint64_t lower, upper, mantissa, upperbit, bits;
    int64_t exponent, real_exponent;
    int lz;
    if (w == 0) {
        *out = negative ? -0.0 : 0.0;
        return 1;
    }
    if (q < RDBKIT_FF_MIN_Q || q > RDBKIT_FF_MAX_Q) return 0;
    exponent = (((152170 + 65536) * q) >> 16) + 1024 + 63;
    lz = __builtin_clzll(w);
    w <<= lz;
    prod = (unsigned __int128)w * rdbkit_ff_hi[q - RDBKIT_FF_MIN_Q];
    lower = (uint64_t)prod;
    upper = (uint64_t)(prod >> 64);
    if ((upper & 0x1FF) == 0x1FF && lower + w < lower) {
        unsigned __int128 p2 = (unsigned __int128)w * rdbkit_ff_lo[q - RDBKIT_FF_MIN_Q];
        uint64_t product_low = (uint64_t)p2;
        uint64_t product_middle2 = (uint64_t)(p2 >> 64);
        uint64_t product_middle1 = lower;
        uint64_t product_high = upper;
        uint64_t product_middle = product_middle1 + product_middle2;
        if (product_middle < product_middle1) product_high++;
        if (product_middle + 1 == 0 && (product_high & 0x1FF) == 0x1FF &&
            product_low + w < product_low)
            return 0;
        upper = product_high;
        lower = product_middle;
    }
    upperbit = upper >> 63;
    mantissa = upper >> (upperbit + 9);
    lz += (int)(1 ^ upperbit);
    if (lower == 0 && (upper & 0x1FF) == 0 && (mantissa & 3) == 1) return 0;
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= (1ULL << 53)) {
        mantissa = 1ULL << 52;
        lz--;
    }
    mantissa &= ~(1ULL << 52);
    real_exponent = exponent - lz;
    if (real_exponent < 1 || real_exponent > 2046) return 0;
    bits = mantissa | ((uint64_t)real_exponent << 52) | ((uint64_t)(negative != 0) << 63);
    memcpy(out, &bits, sizeof bits);
    return 1;
}

#endif
