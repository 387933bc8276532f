/* half.h: IEEE-754 binary16 ("half") conversions for the model file's
 * 16-bit dense sections.  Plain bit manipulation rather than F16C or
 * _Float16, so any C11 compiler gives the same bits on any machine: the file
 * must decode to exactly the network that was evaluated. */
#ifndef DC_HALF_H
#define DC_HALF_H

#include <stdint.h>

#define DC_HALF_MAX 65504.0f /* largest finite half */

/* Nearest half, ties to even (subnormals included).  A finite value of
 * 65520 or more in magnitude becomes infinity; NaN stays a quiet NaN. */
uint16_t dc_half_from_float(float f);
/* Exact: every half is a float. */
float dc_half_to_float(uint16_t h);
/* 1 when f is a half bit for bit (so storing it in 16 bits loses nothing). */
int dc_half_exact(float f);

#endif
