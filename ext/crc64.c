/* Table-driven CRC-64 Jones (facts in shared/RDB_FORMAT.md §10).
 *
 * Reflected algorithm, slice-by-8: table[0][b] is the CRC of byte b alone;
 * table[k] advances table[k-1] by one more zero byte, so eight input bytes
 * are folded per step. Long inputs are cut into three parts whose CRCs are
 * computed in one interleaved loop (three independent dependency chains keep
 * the CPU busy) and joined with the standard GF(2) combine: crc(A||B) =
 * crc(A) * x^(8|B|) mod P  xor  crc(B), valid because init and xorout are 0.
 * The tables are constants computed once at module import.
 */
#include <string.h>

#include "crc64.h"

#define POLY_REFLECTED 0x95AC9329AC4BC9B5ULL

static uint64_t tables[8][256];
static uint64_t x2n[64];   /* x^(2^k) mod P, reflected (bit 63 = x^0) */
static int tables_ready = 0;

/* a * b mod P with both in the reflected representation. */
static uint64_t multmodp(uint64_t a, uint64_t b)
{
    uint64_t m = 1ULL << 63, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ POLY_REFLECTED : b >> 1;
    }
    return p;
}

/* x^(n * 2^k) mod P */
static uint64_t x2nmodp(uint64_t n, unsigned k)
{
    uint64_t p = 1ULL << 63;
    while (n) {
        if (n & 1) p = multmodp(x2n[k & 63], p);
        n >>= 1;
        k++;
    }
    return p;
}

void rdbkit_crc64_init(void)
{
    int i, k, b;
    if (tables_ready) return;
    for (i = 0; i < 256; i++) {
        uint64_t c = (uint64_t)i;
        for (b = 0; b < 8; b++) c = (c & 1) ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
        tables[0][i] = c;
    }
    for (k = 1; k < 8; k++)
        for (i = 0; i < 256; i++)
            tables[k][i] = (tables[k - 1][i] >> 8) ^ tables[0][tables[k - 1][i] & 0xff];
    x2n[0] = 1ULL << 62;   /* x^1 */
    for (k = 1; k < 64; k++) x2n[k] = multmodp(x2n[k - 1], x2n[k - 1]);
    tables_ready = 1;
}

static inline uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

#define FOLD8(c) (tables[7][(c) & 0xff] ^ tables[6][((c) >> 8) & 0xff] ^ \
                  tables[5][((c) >> 16) & 0xff] ^ tables[4][((c) >> 24) & 0xff] ^ \
                  tables[3][((c) >> 32) & 0xff] ^ tables[2][((c) >> 40) & 0xff] ^ \
                  tables[1][((c) >> 48) & 0xff] ^ tables[0][(c) >> 56])

static uint64_t crc_slice8(uint64_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        crc ^= load_le64(p);
        crc = FOLD8(crc);
        p += 8;
        n -= 8;
    }
    while (n--) crc = tables[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

uint64_t rdbkit_crc64(uint64_t crc, const uint8_t *p, size_t n)
{
    size_t part, i;
    uint64_t a, b, c;
    const uint8_t *pb, *pc;
    if (n < 3 * 1024) return crc_slice8(crc, p, n);
    part = (n / 3) & ~(size_t)7;
    pb = p + part;
    pc = p + 2 * part;
    a = crc;
    b = 0;
    c = 0;
    for (i = 0; i < part; i += 8) {
        a ^= load_le64(p + i);
        b ^= load_le64(pb + i);
        c ^= load_le64(pc + i);
        a = FOLD8(a);
        b = FOLD8(b);
        c = FOLD8(c);
    }
    c = crc_slice8(c, pc + part, n - 3 * part);
    /* a covers [0, part), b [part, 2 part), c [2 part, n) */
    a = multmodp(x2nmodp(part, 3), a) ^ b;
    return multmodp(x2nmodp(n - 2 * part, 3), a) ^ c;
}
