/* CRC-64 "Jones" (reflected poly 0x95AC9329AC4BC9B5, init 0, xorout 0). */
#ifndef RDBKIT_CRC64_H
#define RDBKIT_CRC64_H

#include <stddef.h>
#include <stdint.h>

/* Fill the lookup tables; idempotent, call once before rdbkit_crc64. */
void rdbkit_crc64_init(void);

/* Continue a CRC over p[0:n]; pass 0 to start. */
uint64_t rdbkit_crc64(uint64_t crc, const uint8_t *p, size_t n);

#endif
