/* Table-driven CRC-64 Jones (facts in shared/RDB_FORMAT.md §10).
 *
 * Reflected algorithm, slice-by-8: table[0][b] is the CRC of byte b alone;
 * table[k] advances table[k-1] by one more zero byte, so eight input bytes
 * are folded per step. Long inputs are cut into three parts whose CRCs are
 * computed in one interleaved loop (three independent dependency chains keep
 * the CPU busy) and joined with the standard GF(2) combine: crc(A||B) =
 * crc(A) * x^(8|B|) mod P  xor  crc(B), valid because init and xorout are 0.
 * The tables are constants computed once at module import.
 *
 * On x86-64 CPUs with PCLMULQDQ, long inputs are folded 64 bytes at a time
 * instead: a 16-byte block B stands for A(x)*x^64 + C(x) (bit-reflected, so the
 * low 64-bit word A holds the high-degree half), and B*x^d is congruent mod P
 * to A*(x^(d+64) mod P) + C*(x^d mod P). A carry-less product of two reflected
 * 64-bit values comes out multiplied by x^-1, hence the constants x^(d+63) and
 * x^(d-1). Four independent folds run side by side and are merged at the end;
 * the last 16-byte remainder and the tail go through the tables (the remainder
 * is congruent to everything folded, and a zero-init CRC ignores leading
 * zero bits), so no Barrett reduction is needed.
 */
#include <string.h>

#include "crc64.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RDBKIT_HAVE_CLMUL 1
#endif

#define POLY_REFLECTED 0x95AC9329AC4BC9B5ULL

static uint64_t tables[8][256];
#ifdef RDBKIT_HAVE_CLMUL
static void clmul_init(void);
#endif
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
#ifdef RDBKIT_HAVE_CLMUL
    clmul_init();
#endif
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

#ifdef RDBKIT_HAVE_CLMUL
static int have_clmul = 0;
static uint64_t k512[2], k384[2], k256[2], k128[2];

static void clmul_init(void)
{
    __builtin_cpu_init();
    have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    k512[0] = x2nmodp(512 + 63, 0); k512[1] = x2nmodp(512 - 1, 0);
    k384[0] = x2nmodp(384 + 63, 0); k384[1] = x2nmodp(384 - 1, 0);
    k256[0] = x2nmodp(256 + 63, 0); k256[1] = x2nmodp(256 - 1, 0);
    k128[0] = x2nmodp(128 + 63, 0); k128[1] = x2nmodp(128 - 1, 0);
}

__attribute__((target("pclmul,sse4.1")))
static inline __m128i fold(__m128i s, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(s, k, 0x00), _mm_clmulepi64_si128(s, k, 0x11));
}

/* n >= 64; returns the CRC of p[0:n] continuing from crc */
__attribute__((target("pclmul,sse4.1")))
static uint64_t crc_clmul(uint64_t crc, const uint8_t *p, size_t n)
{
    __m128i s0, s1, s2, s3, k;
    uint8_t rem[16];
    size_t blocks = n / 64, i;
    s0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set_epi64x(0, (long long)crc));
    s1 = _mm_loadu_si128((const __m128i *)(p + 16));
    s2 = _mm_loadu_si128((const __m128i *)(p + 32));
    s3 = _mm_loadu_si128((const __m128i *)(p + 48));
    k = _mm_set_epi64x((long long)k512[1], (long long)k512[0]);
    for (i = 1; i < blocks; i++) {
        const uint8_t *q = p + 64 * i;
        s0 = _mm_xor_si128(fold(s0, k), _mm_loadu_si128((const __m128i *)q));
        s1 = _mm_xor_si128(fold(s1, k), _mm_loadu_si128((const __m128i *)(q + 16)));
        s2 = _mm_xor_si128(fold(s2, k), _mm_loadu_si128((const __m128i *)(q + 32)));
        s3 = _mm_xor_si128(fold(s3, k), _mm_loadu_si128((const __m128i *)(q + 48)));
    }
    s3 = _mm_xor_si128(s3, fold(s0, _mm_set_epi64x((long long)k384[1], (long long)k384[0])));
    s3 = _mm_xor_si128(s3, fold(s1, _mm_set_epi64x((long long)k256[1], (long long)k256[0])));
    s3 = _mm_xor_si128(s3, fold(s2, _mm_set_epi64x((long long)k128[1], (long long)k128[0])));
    _mm_storeu_si128((__m128i *)rem, s3);
    crc = crc_slice8(0, rem, 16);
    return crc_slice8(crc, p + 64 * blocks, n - 64 * blocks);
}
#endif

uint64_t rdbkit_crc64(uint64_t crc, const uint8_t *p, size_t n)
{
    size_t part, i;
    uint64_t a, b, c;
    const uint8_t *pb, *pc;
#ifdef RDBKIT_HAVE_CLMUL
    if (have_clmul && n >= 256) return crc_clmul(crc, p, n);
#endif
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
