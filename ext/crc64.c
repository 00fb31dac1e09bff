/* Table-driven CRC-64 Jones, slice-by-8 (facts in shared/RDB_FORMAT.md §10).
 *
 * Reflected algorithm: table[0][b] is the CRC of byte b alone; table[k]
 * advances table[k-1] by one more zero byte, so eight input bytes are folded
 * per step. The tables are constants computed once at module import.
 */
#include <string.h>

#include "crc64.h"

#define POLY_REFLECTED 0x95AC9329AC4BC9B5ULL

static uint64_t tables[8][256];
static int tables_ready = 0;

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
    tables_ready = 1;
}

static inline uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

uint64_t rdbkit_crc64(uint64_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        crc ^= load_le64(p);
        crc = tables[7][crc & 0xff] ^ tables[6][(crc >> 8) & 0xff] ^
              tables[5][(crc >> 16) & 0xff] ^ tables[4][(crc >> 24) & 0xff] ^
              tables[3][(crc >> 32) & 0xff] ^ tables[2][(crc >> 40) & 0xff] ^
              tables[1][(crc >> 48) & 0xff] ^ tables[0][crc >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = tables[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}
